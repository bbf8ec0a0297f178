package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/controlplane"
	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/internal/xds"
)

// Options run a control plane replica on Kubernetes.
type Options struct {
	Config
	RestConfig *rest.Config
	// ControlPlane configures the xDS server; Run sets its Source,
	// LoadCA, WaitForMesh and IsLeader.
	ControlPlane controlplane.Config
	// LeaderElection elects one replica (a Lease in Namespace) to write
	// statuses, judge rollout gates and create the dev CA; every replica
	// serves xDS. LeaseDuration, RenewDeadline and RetryPeriod default to
	// 8s, 5s and 1s: a leader that dies is replaced within ~11s (the lease,
	// then a follower's next try).
	LeaderElection                            bool
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Identity names this replica in the Lease (default: a unique id).
	Identity string
	// StatusInterval is how often statuses follow the proxies' progress
	// (default 5s; every assembly writes them at once).
	StatusInterval time.Duration
	// Peers are the admin URLs of the other replicas, whose proxies the
	// leader counts in Programmed (ServicePeers finds them, reading the
	// replica's cache); nil: this replica's proxies only.
	Peers func(context.Context, client.Reader) []string
	// AuthzService is the authorizers' admin Service in Namespace (its port
	// named admin): the rollout gates read every ready replica behind it.
	AuthzService string
	// KeepLeaseOnStop stops as a crash would, leaving the lease to expire
	// instead of handing it over (tests of a leader's death).
	KeepLeaseOnStop bool
}

// LeaseName is the leader election Lease.
const LeaseName = "meshguard-controlplane"

// CASecret holds the dev CA every replica signs with (keys ca.crt, ca.key).
const CASecret = "meshguard-dev-ca"

// Scheme has Kubernetes' types and meshguard's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

// Replica is a running control plane replica.
type Replica struct {
	Server *controlplane.Server
	Source *Source
	mgr    manager.Manager
	done   chan error
	cancel context.CancelFunc
}

// IsLeader reports whether this replica is the elected one (always, without
// leader election).
func (r *Replica) IsLeader() bool {
	select {
	case <-r.mgr.Elected():
		return true
	default:
		return false
	}
}

// Done is closed with the replica's end: an error when it lost its lease
// (the process should exit and be restarted) or its cache failed.
func (r *Replica) Done() <-chan error { return r.done }

// Stop stops serving and releases the lease.
func (r *Replica) Stop(ctx context.Context) {
	r.Server.Stop(ctx)
	r.cancel()
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}

// Start starts a replica: the informer cache (synced before it returns),
// leader election, the status writer and the xDS server.
func Start(ctx context.Context, opts Options, log *slog.Logger) (*Replica, error) {
	opts.Config.applyDefaults()
	opts.Config.Log = log
	if opts.Namespace == "" {
		return nil, errors.New("kubernetes: the control plane's namespace is required")
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = 5 * time.Second
	}
	durations := []*time.Duration{&opts.LeaseDuration, &opts.RenewDeadline, &opts.RetryPeriod}
	for i, d := range []time.Duration{8 * time.Second, 5 * time.Second, time.Second} {
		if *durations[i] <= 0 {
			*durations[i] = d
		}
	}
	crlog.SetLogger(logr.FromSlogHandler(log.Handler()))
	scheme := Scheme()
	mgr, err := manager.New(opts.RestConfig, manager.Options{
		Scheme:                        scheme,
		Cache:                         CacheOptions(scheme, opts.Namespace),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              LeaseName,
		LeaderElectionNamespace:       opts.Namespace,
		LeaderElectionReleaseOnCancel: !opts.KeepLeaseOnStop,
		LeaseDuration:                 &opts.LeaseDuration,
		RenewDeadline:                 &opts.RenewDeadline,
		RetryPeriod:                   &opts.RetryPeriod,
		// The lease is this process's: a replica that loses it exits.
		LeaderElectionResourceLock: "leases",
		Logger:                     logr.FromSlogHandler(log.Handler()),
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	src := NewSource(mgr.GetCache(), opts.Config)
	// Informers for every watched kind exist before the cache starts, so
	// the first Load sees a synced cache.
	for _, obj := range watched() {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("kubernetes: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Replica{Source: src, mgr: mgr, done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- mgr.Start(ctx); close(r.done) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		return nil, fmt.Errorf("kubernetes: the informer cache did not sync: %w", context.Cause(ctx))
	}
	cp := opts.ControlPlane
	cp.Source, cp.WaitForMesh, cp.IsLeader = src, true, r.IsLeader
	cp.LoadCA = SecretCA(mgr.GetAPIReader(), mgr.GetClient(), opts.Namespace)
	cp.RolloutState = ConfigMapState{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), Namespace: opts.Namespace}
	if opts.AuthzService != "" {
		find := ServicePeers(opts.Namespace, opts.AuthzService, "admin", "")
		cp.AuthzDiscover = func(ctx context.Context) []string { return find(ctx, mgr.GetCache()) }
	}
	if r.Server, err = controlplane.New(cp, log); err != nil {
		cancel()
		return nil, err
	}
	if err := followRolloutState(ctx, mgr.GetCache(), opts.Namespace, r.Server.Rollouts, log); err != nil {
		cancel()
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	if err := r.Server.Start(ctx); err != nil {
		cancel()
		return nil, err
	}
	own := func() []xds.ProxyStatus { return r.Server.Status().Proxies }
	var peers func(context.Context) []string
	if opts.Peers != nil {
		peers = func(ctx context.Context) []string { return opts.Peers(ctx, mgr.GetCache()) }
	}
	proxies := allProxies(own, peers, &http.Client{Timeout: 3 * time.Second})
	if err := mgr.Add(NewStatusWriter(mgr.GetClient(), src, proxies, opts.StatusInterval, log)); err != nil {
		r.Stop(context.Background())
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return r, nil
}

// SecretCA loads the dev CA from the Secret every replica shares, creating
// it on first use; of two replicas racing to create it, the second reads
// the first's. reader reads the API server directly (Secrets are not
// cached: the cache would hold every Secret of the namespace).
func SecretCA(reader client.Reader, writer client.Client, namespace string) func(spiffeid.TrustDomain) (*devca.CA, error) {
	return func(td spiffeid.TrustDomain) (*devca.CA, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		key := client.ObjectKey{Namespace: namespace, Name: CASecret}
		for range 3 {
			var sec corev1.Secret
			err := reader.Get(ctx, key, &sec)
			if err == nil {
				ca, err := devca.Parse(sec.Data["ca.crt"], sec.Data["ca.key"], td)
				if err != nil {
					return nil, fmt.Errorf("dev CA Secret %s/%s: %w", namespace, CASecret, err)
				}
				return ca, nil
			}
			if !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("dev CA Secret %s/%s: %w", namespace, CASecret, err)
			}
			ca, err := devca.New(td)
			if err != nil {
				return nil, err
			}
			keyPEM, err := ca.KeyPEM()
			if err != nil {
				return nil, err
			}
			sec = corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: CASecret, Labels: map[string]string{"app.kubernetes.io/managed-by": "meshguard"}},
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{"ca.crt": ca.BundlePEM(), "ca.key": keyPEM},
			}
			err = writer.Create(ctx, &sec)
			if err == nil {
				return ca, nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("create Secret %s/%s: %w", namespace, CASecret, err)
			}
		}
		return nil, fmt.Errorf("dev CA Secret %s/%s: created and gone again", namespace, CASecret)
	}
}
