package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshguard/meshguard/controlplane/translate"
	"github.com/meshguard/meshguard/internal/demoapp"
)

func newDemoWorkloadCmd() *cobra.Command {
	var name, mesh, authz, listen, cpAdmin string
	cmd := &cobra.Command{
		Use:   "workload --name NAME --mesh FILE",
		Short: "Run one of the quickstart's demo workloads (meshguard up starts them)",
		Long: `Run a quickstart demo workload by name:

  frontend-*  HTTP for users (--listen, default 127.0.0.1:8000), calling orders over
              proxyless gRPC (xDS from GRPC_XDS_BOOTSTRAP, mTLS)
  orders-*    proxyless gRPC server; asks the authorizer (--authz) about every call,
              with the route settings the control plane serves (--control-plane:
              rollouts at their step in force; without it, the mesh file's)
  payments-*  plain HTTP app on 127.0.0.1:<appPort>, meant to sit behind an Envoy sidecar`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := loadMesh(mesh)
			if err != nil {
				return err
			}
			svc, w, ok := m.Workload(name)
			if !ok {
				return fmt.Errorf("no workload %q in %s", name, mesh)
			}
			ctx := cmd.Context()
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			switch svc.Name {
			case "frontend":
				orders, ok := m.Service("orders")
				if !ok {
					return fmt.Errorf("the mesh has no orders service")
				}
				conn, err := demoapp.DialOrders(translate.ProxylessTarget(orders), nil)
				if err != nil {
					return err
				}
				defer conn.Close()
				log.Info("frontend serving", "listen", listen, "orders", translate.ProxylessTarget(orders))
				return demoapp.ServeHTTP(ctx, listen, demoapp.Frontend(conn, m.SPIFFEID(svc)))
			case "orders":
				conn, err := grpc.NewClient(authz, grpc.WithTransportCredentials(insecure.NewCredentials()))
				if err != nil {
					return err
				}
				defer conn.Close()
				lis, err := net.Listen("tcp", net.JoinHostPort(w.Address, strconv.Itoa(int(w.AppPort))))
				if err != nil {
					return err
				}
				routes := demoapp.StaticRoutes(svc)
				if cpAdmin != "" {
					go routes.Follow(ctx, cpAdmin, svc.Name, time.Second, log)
				}
				log.Info("orders serving", "listen", lis.Addr().String(), "routes_from", cpAdmin)
				return demoapp.ServeOrders(ctx, lis, &demoapp.Orders{Service: svc, Routes: routes, SelfID: m.SPIFFEID(svc),
					Authz: authv3.NewAuthorizationClient(conn), Log: log}, nil)
			default:
				addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(w.AppPort)))
				log.Info("app serving", "service", svc.Name, "listen", addr)
				return demoapp.ServeHTTP(ctx, addr, demoapp.Payments())
			}
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "workload name")
	cmd.Flags().StringVar(&mesh, "mesh", "", "mesh file")
	cmd.Flags().StringVar(&authz, "authz", "127.0.0.1:9191", "authorizer gRPC address (orders)")
	cmd.Flags().StringVar(&listen, "listen", upFrontendUI, "HTTP address for users (frontend)")
	cmd.Flags().StringVar(&cpAdmin, "control-plane", "", "control plane admin address to read route settings from (orders)")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("mesh")
	return cmd
}
