package demoapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/xds"
)

// DialOrders connects to orders through xDS (target xds:///<target>). The
// bootstrap comes from GRPC_XDS_BOOTSTRAP, or from bootstrap when set.
func DialOrders(target string, bootstrap []byte) (*grpc.ClientConn, error) {
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithDefaultCallOptions(grpc.CallContentSubtype("json"))}
	if bootstrap != nil {
		var r resolver.Builder
		if r, err = xds.NewXDSResolverWithConfigForTesting(bootstrap); err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithResolvers(r))
	}
	return grpc.NewClient("xds:///"+target, opts...)
}

// CallOrders invokes one demo method, forwarding the user's Authorization.
func CallOrders(ctx context.Context, conn *grpc.ClientConn, method string, req *OrderRequest, authorization string) (*OrderReply, error) {
	if authorization != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authorization)
	}
	var reply OrderReply
	if err := conn.Invoke(ctx, method, req, &reply, grpc.WaitForReady(true)); err != nil {
		return nil, err
	}
	return &reply, nil
}

// Frontend serves users: GET /catalog, GET /orders/{id}, POST /orders; each
// calls orders over the mesh and reports who saw whom.
func Frontend(conn *grpc.ClientConn, selfID string) http.Handler {
	mux := http.NewServeMux()
	call := func(w http.ResponseWriter, r *http.Request, method string, req *OrderRequest) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		reply, err := CallOrders(ctx, conn, method, req, r.Header.Get("authorization"))
		w.Header().Set("content-type", "application/json")
		if err != nil {
			st := status.Convert(err)
			httpStatus := map[codes.Code]int{codes.PermissionDenied: 403, codes.Unauthenticated: 401}[st.Code()]
			if httpStatus == 0 {
				httpStatus = http.StatusBadGateway
			}
			w.WriteHeader(httpStatus)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": st.Message(), "frontend": selfID})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"frontend": selfID, "orders": reply})
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /catalog", func(w http.ResponseWriter, r *http.Request) { call(w, r, methodList, &OrderRequest{}) })
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		call(w, r, methodGet, &OrderRequest{ID: r.PathValue("id")})
	})
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		call(w, r, methodCreate, &OrderRequest{Item: r.URL.Query().Get("item")})
	})
	return mux
}

// Payments is the payments HTTP app (behind its Envoy sidecar): it echoes
// what the sidecar's authorizer established.
func Payments() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"service": "payments", "method": r.Method, "path": r.URL.Path,
			"principal": r.Header.Get("x-meshguard-principal"), "decision_id": r.Header.Get("x-meshguard-decision-id"),
		})
	})
}

// ServeHTTP runs h on addr until ctx ends.
func ServeHTTP(ctx context.Context, addr string, h http.Handler) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", addr, err)
	}
	return nil
}
