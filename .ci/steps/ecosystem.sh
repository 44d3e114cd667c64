# Ecosystem (issue 6): the nested gRPC module, which the root `go test ./...`
# does not reach, and the runnable examples, each of which exits non-zero if
# a good client is not served or a bad one is not refused.
echo "== ecosystem: grpcauth module (vet, test, example)"
(
	cd grpcauth
	go vet ./...
	go test -race -shuffle=on -count=1 ./...
	go run ./examples/grpc
)
echo "== ecosystem: examples/http-keyids"
go run ./examples/http-keyids
