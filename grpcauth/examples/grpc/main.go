// Command grpc runs a gRPC server (the standard health service) whose
// connections are authenticated with hmacauth, calls it as two good clients
// and one with a wrong key, and exits 0 if each was treated as it should
// be. From the grpcauth directory:
//
//	go run ./examples/grpc
//
// The server's interceptor reads the caller's key ID with
// grpcauth.KeyIDFromContext (peer.FromContext underneath) and sends it
// back in a response header.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hmacauth/auth"
	"github.com/hmacauth/auth/grpcauth"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	keys := map[string][]byte{}
	for _, id := range []string{"alice", "bob"} {
		k, err := auth.GenerateKey()
		if err != nil {
			return err
		}
		keys[id] = k
	}

	// Server: plain TCP listener, hmacauth in the transport credentials.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	serverCreds, err := grpcauth.NewServerCredentials(auth.WithKeys(keys), auth.WithLogger(logger))
	if err != nil {
		return err
	}
	whoami := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		id, ok := grpcauth.KeyIDFromContext(ctx)
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "not an hmacauth connection")
		}
		grpc.SetHeader(ctx, metadata.Pairs("x-key-id", id))
		return h(ctx, req)
	}
	srv := grpc.NewServer(grpc.Creds(serverCreds), grpc.UnaryInterceptor(whoami))
	healthpb.RegisterHealthServer(srv, health.NewServer()) // SERVING for ""
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() { srv.Stop(); <-served }()

	call := func(id string, key []byte) error {
		creds, err := grpcauth.NewClientCredentials(auth.WithKeyID(id), auth.WithKey(key))
		if err != nil {
			return err
		}
		cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var md metadata.MD
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
		if err != nil {
			return err
		}
		fmt.Printf("%s: health %s, the server saw key ID %v\n", id, resp.GetStatus(), md.Get("x-key-id"))
		return nil
	}

	for _, id := range []string{"alice", "bob"} {
		if err := call(id, keys[id]); err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
	}
	wrong, _ := auth.GenerateKey()
	err = call("bob", wrong)
	if status.Code(err) != codes.Unavailable {
		return fmt.Errorf("a wrong key was not refused: %v", err)
	}
	fmt.Printf("bob with a wrong key: refused: %v\n", err)

	// The server keeps serving after a refused client.
	if err := call("alice", keys["alice"]); err != nil {
		return errors.New("the server stopped serving after a refused client")
	}
	return nil
}
