package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/internal/gctune"
	"github.com/meshguard/meshguard/internal/redisclient"
	"github.com/meshguard/meshguard/internal/telemetry"
)

func newAuthzCmd() *cobra.Command {
	var configPath string
	var checkOnly bool
	cmd := &cobra.Command{
		Use:   "authz --config FILE",
		Short: "Run the Envoy ext_authz server (Cedar + JWT + SPIFFE, fail-closed)",
		Long: `Run Envoy's external authorization service (envoy.service.auth.v3.Authorization).

Each CheckRequest is mapped to a Cedar request — principal (User from a verified
JWT, Workload from the mTLS SPIFFE ID, or Anonymous), action (the HTTP method),
resource (Service::"<meshguard.service>") and context — and evaluated against the
policy set the route names in its meshguard.policy context extension. Every error
denies.

Listeners (see docs/configuration.md):
  listen        gRPC ext_authz, plus grpc.health.v1 and server reflection
  http_listen   optional: Envoy's HTTP ext_authz service mode
  admin_listen  /healthz, /readyz, /metrics, /v1/status

Policies and entities are reloaded when their files change; a set that fails to
parse keeps its last good version and is reported on /v1/status.

The process runs with GOGC=400 unless GOGC is set, and with a soft memory limit
of 90% of its container's memory limit unless GOMEMLIMIT is set (see
docs/operations.md, "Memory and garbage collection").`,
		Example: `  # Run the quickstart authorizer
  meshguard authz --config examples/quickstart/authz.yaml

  # Validate a configuration and its policies without serving
  meshguard authz --config authz.yaml --check`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := extauthz.LoadConfig(configPath)
			if err != nil {
				return err
			}
			log, err := telemetry.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
			if err != nil {
				return err
			}
			redisclient.SetLogger(log)
			srv, err := extauthz.NewServer(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			if checkOnly {
				st := srv.Authz.Status()
				for _, s := range st.Policies.Sets {
					if s.LastError != "" {
						return fmt.Errorf("policy set %s: %s", s.Name, s.LastError)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "policy set %-20s %3d policies  version %s\n", s.Name, s.Policies, s.Version)
				}
				if st.Policies.EntitiesError != "" {
					return fmt.Errorf("entities: %s", st.Policies.EntitiesError)
				}
				fmt.Fprintln(cmd.OutOrStdout(), "configuration OK")
				return nil
			}
			log.Info("garbage collector", "setting", gctune.Apply(gctune.AuthzPercent))
			return srv.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "authorizer configuration file (YAML; see docs/configuration.md)")
	cmd.Flags().BoolVar(&checkOnly, "check", false, "load and validate the configuration and policies, then exit")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
