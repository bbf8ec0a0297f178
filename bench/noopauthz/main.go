// Command noopauthz is the transport floor for load runs: an ext_authz gRPC
// server whose Check returns a fixed OK without looking at the request. The
// response has the shape of meshguard's (two upstream headers and seven
// dynamic metadata fields), and the server uses the same gRPC options and GC
// target, so the difference between the two under the same load is the cost
// of deciding — not of carrying a larger message or of collecting garbage
// differently.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // only served with -pprof
	"os"
	"os/signal"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshguard/meshguard/internal/gctune"
	"github.com/meshguard/meshguard/internal/grpcserver"
)

type noop struct {
	authv3.UnimplementedAuthorizationServer
}

var ok = func() *authv3.CheckResponse {
	md, _ := structpb.NewStruct(map[string]any{
		"decision_id": "00000000000000000000000000000000", "principal": `Anonymous::"anonymous"`,
		"policy_set": "orders", "policies": []any{"orders/read.cedar#public-catalog"},
		"mode": "enforce", "allowed": true, "reason": "allowed",
	})
	hdr := func(k, v string) *corev3.HeaderValueOption {
		return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
	}
	return &authv3.CheckResponse{
		Status:          &rpcstatus.Status{Code: int32(code.Code_OK)},
		DynamicMetadata: md,
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{
			hdr("x-meshguard-principal", `Anonymous::"anonymous"`), hdr("x-meshguard-decision-id", "00000000000000000000000000000000"),
		}}},
	}
}()

func (noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return ok, nil
}

func main() {
	addr := flag.String("listen", "127.0.0.1:9391", "gRPC listen address")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address (to compare profiles with meshguard's)")
	flag.Parse()
	if *pprofAddr != "" {
		go func() { log.Print(http.ListenAndServe(*pprofAddr, nil)) }()
	}
	// The floor collects garbage as meshguard authz does, so the two differ
	// by the cost of deciding, not by their GC settings.
	log.Print("garbage collector: ", gctune.Apply(gctune.AuthzPercent))
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer(grpcserver.Options(1 << 20)...)
	authv3.RegisterAuthorizationServer(s, noop{})
	reflection.Register(s)
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt)
		<-c
		s.Stop()
	}()
	if err := s.Serve(lis); err != nil {
		log.Fatal(err)
	}
}
