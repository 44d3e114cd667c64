package grpcauth_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/hmacauth/auth"
	"github.com/hmacauth/auth/grpcauth"
)

// This example authenticates gRPC connections with hmacauth. An
// interceptor reads the caller's identity with peer.FromContext: the
// AuthInfo names the key ID and reports the auth-only mode honestly as
// NoSecurity.
func Example() {
	key := bytes.Repeat([]byte{1}, auth.DefaultKeyLen) // use auth.GenerateKey
	serverCreds, err := grpcauth.NewServerCredentials(auth.WithKeys(map[string][]byte{"alice": key}))
	if err != nil {
		log.Fatal(err)
	}
	logCaller := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		p, _ := peer.FromContext(ctx)
		ai := p.AuthInfo.(grpcauth.AuthInfo)
		fmt.Printf("server: %s called by key ID %q, security %v\n", info.FullMethod, ai.KeyID(), ai.SecurityLevel)
		return h(ctx, req)
	}
	srv := grpc.NewServer(grpc.Creds(serverCreds), grpc.UnaryInterceptor(logCaller))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()

	clientCreds, err := grpcauth.NewClientCredentials(auth.WithKeyID("alice"), auth.WithKey(key))
	if err != nil {
		log.Fatal(err)
	}
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(clientCreds))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("client:", resp.GetStatus())
	// Output:
	// server: /grpc.health.v1.Health/Check called by key ID "alice", security NoSecurity
	// client: SERVING
}
