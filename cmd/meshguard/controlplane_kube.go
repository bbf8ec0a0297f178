package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/controlplane/kube"
)

// kubeFlags are the control plane's flags for the Kubernetes source.
type kubeFlags struct {
	enabled     bool
	kubeconfig  string
	namespace   string
	mesh        string
	leaderElect bool
	peerService string
	authzSvc    string
	podIP       string
	lease       time.Duration
}

func (k *kubeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&k.enabled, "kubernetes", false, "read the mesh from the cluster's meshguard.dev objects instead of a file")
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account)")
	f.StringVar(&k.namespace, "namespace", envOr("POD_NAMESPACE", "meshguard"), "the control plane's namespace: its PolicySets, WasmFilters, lease and dev CA Secret ($POD_NAMESPACE)")
	f.StringVar(&k.mesh, "mesh-name", "default", "the Mesh object served")
	f.BoolVar(&k.leaderElect, "leader-elect", true, "elect one replica to write statuses and judge rollouts (all replicas serve xDS)")
	f.DurationVar(&k.lease, "lease-duration", 8*time.Second, "how long a dead leader holds the lease before another replica takes over")
	f.StringVar(&k.peerService, "peer-service", "", "the control plane's Service (port named admin): the leader counts the other replicas' proxies in statuses")
	f.StringVar(&k.authzSvc, "authz-service", "", "the authorizers' admin Service (port named admin): rollout gates read every ready replica behind it, instead of --authz-admin")
	f.StringVar(&k.podIP, "pod-ip", os.Getenv("POD_IP"), "this replica's address, left out of the peers ($POD_IP)")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func runOnKubernetes(ctx context.Context, k kubeFlags, cfg controlplane.Config, log *slog.Logger) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	rest, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	}
	rest.UserAgent = "meshguard-controlplane"
	opts := kube.Options{
		Config:         kube.Config{Namespace: k.namespace, Mesh: k.mesh},
		RestConfig:     rest,
		ControlPlane:   cfg,
		LeaderElection: k.leaderElect,
		LeaseDuration:  k.lease,
		RenewDeadline:  k.lease * 5 / 8,
		RetryPeriod:    k.lease / 8,
		AuthzService:   k.authzSvc,
	}
	if k.peerService != "" {
		opts.Peers = kube.ServicePeers(k.namespace, k.peerService, "admin", k.podIP)
	}
	r, err := kube.Start(ctx, opts, log)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-r.Done():
		if err != nil {
			stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r.Stop(stop)
			return fmt.Errorf("kubernetes: %w", err)
		}
	}
	stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.Stop(stop)
	return nil
}
