package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshguard/meshguard/extauthz/kubepolicy"
	"github.com/meshguard/meshguard/internal/telemetry"
)

func newPolicySyncCmd() *cobra.Command {
	var kubeconfig, namespace, dir, health, logLevel string
	cmd := &cobra.Command{
		Use:   "sync --dir DIR [--namespace NS]",
		Short: "Mirror a namespace's PolicySets into the authorizer's policy directory (Kubernetes)",
		Long: `Watch the PolicySet objects of a namespace (and the ConfigMaps they name) and
keep a policy directory in step: each set a subdirectory of its .cedar files,
the whole directory replaced at once on every change, as the kubelet updates a
ConfigMap volume. The authorizer reads that directory (its policies key) and
reloads on change; a set whose new text does not parse keeps its last good
version there.

The Helm chart runs this beside each authorizer (a native sidecar sharing an
emptyDir). --health serves /readyz, 200 once the directory was first written:
the authorizer then starts with every set in place.`,
		Example: `  meshguard policy sync --namespace meshguard --dir /var/run/meshguard/policies --health :9194`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := telemetry.NewLogger(os.Stderr, logLevel, "json")
			if err != nil {
				return err
			}
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			rest, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
			if err != nil {
				return err
			}
			rest.UserAgent = "meshguard-policy-sync"
			s, err := kubepolicy.New(kubepolicy.Config{RestConfig: rest, Namespace: namespace, Dir: dir, Log: log})
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if health != "" {
				lis, err := net.Listen("tcp", health)
				if err != nil {
					return err
				}
				mux := http.NewServeMux()
				mux.HandleFunc("GET /readyz", s.Ready)
				mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
				srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
				go func() { _ = srv.Serve(lis) }()
				defer func() {
					stop, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					_ = srv.Shutdown(stop)
				}()
			}
			if err := s.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "the policy directory to keep (the authorizer's policies)")
	f.StringVar(&namespace, "namespace", envOr("POD_NAMESPACE", "meshguard"), "namespace whose PolicySets are mirrored ($POD_NAMESPACE)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account)")
	f.StringVar(&health, "health", "", "serve /healthz and /readyz here (e.g. :9194)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}
