package demoapp

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"

	"github.com/meshguard/meshguard/controlplane/model"
)

// Orders is the orders gRPC server. gRPC-Go has no ext_authz filter, so it
// calls meshguard's authorizer itself, with the CheckRequest a sidecar would
// send for the matching route: Cedar decides, as it would behind Envoy.
type Orders struct {
	Service *model.Service
	// Routes give each call's context extensions (StaticRoutes(Service) when nil).
	Routes *Routes
	SelfID string
	Authz  authv3.AuthorizationClient
	Log    *slog.Logger
}

// ServeOrders runs the orders xDS server on lis until ctx ends. The xDS
// bootstrap comes from GRPC_XDS_BOOTSTRAP, or from bootstrap when set.
func ServeOrders(ctx context.Context, lis net.Listener, o *Orders, bootstrap []byte) error {
	creds, err := xdscreds.NewServerCredentials(xdscreds.ServerOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		return err
	}
	if o.Routes == nil {
		o.Routes = StaticRoutes(o.Service)
	}
	opts := []grpc.ServerOption{grpc.Creds(creds)}
	if bootstrap != nil {
		opts = append(opts, xds.BootstrapContentsForTesting(bootstrap))
	}
	srv, err := xds.NewGRPCServer(opts...)
	if err != nil {
		return fmt.Errorf("xDS server: %w", err)
	}
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: ordersService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "List", Handler: o.handler("GET", func(r *OrderRequest) string { return "/catalog" }, "catalog: 3 books")},
			{MethodName: "Get", Handler: o.handler("GET", func(r *OrderRequest) string { return "/orders/" + r.ID }, "order")},
			{MethodName: "Create", Handler: o.handler("POST", func(r *OrderRequest) string { return "/orders" }, "created")},
		},
	}, struct{}{})
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	return srv.Serve(lis)
}

func (o *Orders) handler(method string, path func(*OrderRequest) string, result string) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var req OrderRequest
		if err := dec(&req); err != nil {
			return nil, err
		}
		reply, err := o.authorize(ctx, method, path(&req))
		if err != nil {
			return nil, err
		}
		reply.Result = result
		if req.ID != "" {
			reply.Result += " " + req.ID
		}
		return reply, nil
	}
}

// authorize asks the authorizer, as an Envoy sidecar for this route would.
func (o *Orders) authorize(ctx context.Context, method, path string) (*OrderReply, error) {
	caller := ""
	var addr string
	if p, ok := peer.FromContext(ctx); ok {
		addr = p.Addr.String()
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
			if id, err := x509svid.IDFromCert(info.State.PeerCertificates[0]); err == nil {
				caller = id.String()
			}
		}
	}
	headers := map[string]string{":method": method, ":path": path, ":authority": o.Service.Name}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, k := range []string{"authorization", "x-request-id", "traceparent"} {
			if v := md.Get(k); len(v) > 0 {
				headers[k] = v[0]
			}
		}
	}
	host, port, _ := net.SplitHostPort(addr)
	var portNum uint32
	fmt.Sscan(port, &portNum)
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Principal: caller, Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: portNum}}}}},
		Destination: &authv3.AttributeContext_Peer{Principal: o.SelfID},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Path: path, Host: o.Service.Name, Scheme: "https", Headers: headers}},
		ContextExtensions: o.Routes.Extensions(method, path),
	}}
	resp, err := o.Authz.Check(ctx, req)
	if err != nil {
		// Fail closed: no answer from the authorizer is a denial.
		return nil, status.Errorf(codes.Unavailable, "authorizer unavailable: %v", err)
	}
	md := resp.GetDynamicMetadata().AsMap()
	decision, _ := md["decision_id"].(string)
	principal, _ := md["principal"].(string)
	switch code.Code(resp.GetStatus().GetCode()) {
	case code.Code_OK:
		return &OrderReply{Server: o.SelfID, Caller: caller, Principal: principal, DecisionID: decision}, nil
	case code.Code_UNAUTHENTICATED:
		return nil, status.Errorf(codes.Unauthenticated, "unauthenticated (decision %s)", decision)
	default:
		return nil, status.Errorf(codes.PermissionDenied, "denied for %s (decision %s)", principal, decision)
	}
}
