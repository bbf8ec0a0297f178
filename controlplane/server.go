package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/controlplane/rollout"
	"github.com/meshguard/meshguard/controlplane/source"
	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/internal/periodic"
	"github.com/meshguard/meshguard/internal/xds"
)

// Config configures a control plane process.
type Config struct {
	MeshPath string
	// Source, when set, supplies the mesh instead of the file at MeshPath
	// (which still places the default CA and rollout directories).
	Source      source.Source
	Listen      string // ADS gRPC; default: the mesh's spec.xds.address
	AdminListen string // status, metrics
	CADir       string // dev CA directory
	// LoadCA, when set, supplies the dev CA instead of CADir: replicas of
	// one control plane must share it (on Kubernetes, a Secret).
	LoadCA func(spiffeid.TrustDomain) (*devca.CA, error)
	// WaitForMesh starts the server even when the source has no mesh yet
	// (not ready until it has); without it that is an error.
	WaitForMesh bool
	// IsLeader, when set, says whether this replica may move rollouts: of
	// several replicas serving one mesh, the elected one.
	IsLeader func() bool
	SVIDTTL  time.Duration
	// MaxConnectionAge makes proxies reconnect periodically, spreading load
	// after control plane restarts or scale-out.
	MaxConnectionAge time.Duration
	// TLS serves ADS over mTLS. Then a node's secrets are served only to a
	// stream whose peer SPIFFE ID is that node's workload identity.
	TLS *identity.TLSConfig
	// Socket is a Unix socket to serve ADS on as well (default: the mesh's
	// spec.xds.socket): there a node's secrets go only to a peer running
	// as the node's workload uid (SO_PEERCRED).
	Socket string
	// InsecureLoopbackSecrets serves a node's secrets to any plaintext
	// loopback peer that claims the node: any local process can read any
	// workload's key. For the single-host quickstart only.
	InsecureLoopbackSecrets bool

	// RolloutDir holds the rollout controller's state and audit trail
	// (default: .meshguard/rollouts beside the mesh file).
	RolloutDir string
	// RolloutState, when set, keeps the rollout state instead of
	// RolloutDir/state.json, shared by the replicas (on Kubernetes, a
	// ConfigMap the leader writes and the others follow).
	RolloutState rollout.StateStore
	// RolloutInterval is how often rollout gates are judged (default 10s).
	RolloutInterval time.Duration
	// AuthzAdmin are the admin addresses of the authorizers whose rollout
	// counts the gates judge: every replica.
	AuthzAdmin []string
	// AuthzDiscover, when set, finds them at each judgement instead.
	AuthzDiscover func(context.Context) []string
	// AdminToken, when set, must be presented as a bearer token to the
	// admin API's commands (rollout promote, rollback, pause, resume).
	// Without it, commands are only served on a loopback admin listener.
	AdminToken string
}

// Server is a running control plane.
type Server struct {
	cfg      Config
	log      *slog.Logger
	Registry *prometheus.Registry
	Tracker  *xds.Tracker
	Cache    *xds.Cache
	Builder  *Builder
	Rollouts *rollout.Controller

	grpc, sockGRPC *grpc.Server
	admin          *http.Server
	lis, adminLis  net.Listener
	sockLis        net.Listener
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	lastErr        error
	lastErrMu      sync.Mutex
	closers        []func()

	src     source.Source // where meshes come from
	applyMu sync.Mutex    // serialises applying the mesh: reloads, rollout moves, rotation
	spec    *model.Mesh   // the last good mesh as its file declares it
}

// New loads the mesh and prepares the server (nothing listens yet).
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.CADir == "" {
		cfg.CADir = filepath.Join(filepath.Dir(cfg.MeshPath), ".meshguard", "ca")
	}
	if cfg.MaxConnectionAge == 0 {
		cfg.MaxConnectionAge = 30 * time.Minute
	}
	if cfg.RolloutDir == "" {
		cfg.RolloutDir = filepath.Join(filepath.Dir(cfg.MeshPath), ".meshguard", "rollouts")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tracker := xds.NewTracker(xds.NewMetrics(reg))
	cache := xds.NewCache(log, tracker)
	src := cfg.Source
	if src == nil {
		src = source.File{Path: cfg.MeshPath}
	}
	s := &Server{cfg: cfg, log: log, Registry: reg, Tracker: tracker, Cache: cache, src: src,
		Builder: NewBuilder(cache, cfg.CADir, cfg.SVIDTTL, log)}
	s.registerIdentityMetrics()
	if cfg.LoadCA != nil {
		s.Builder.secrets.loadCA = cfg.LoadCA
	}
	ctl, err := rollout.New(rollout.Config{Dir: cfg.RolloutDir, State: cfg.RolloutState, Authorizers: cfg.AuthzAdmin, Discover: cfg.AuthzDiscover,
		Interval: cfg.RolloutInterval, Log: log, Active: cfg.IsLeader})
	if err != nil {
		return nil, err
	}
	s.Rollouts = ctl
	m, err := s.src.Load()
	if err == nil {
		err = s.apply(m)
	}
	if err != nil && !cfg.WaitForMesh {
		ctl.Close()
		return nil, err
	}
	if err != nil {
		log.Warn("no mesh yet; serving none until the source has one", "source", s.src.String(), "err", err)
		s.lastErr = err
	}
	ctl.OnChange(s.reapply)
	if s.cfg.Listen == "" {
		m := s.Builder.Mesh()
		if m == nil {
			ctl.Close()
			return nil, errors.New("no mesh to take the xDS address from: set the listen address")
		}
		s.cfg.Listen = m.Spec.XDS.Address
	}
	if s.cfg.Socket == "" {
		if m := s.Builder.Mesh(); m != nil {
			s.cfg.Socket = m.Spec.XDS.Socket
		}
	}
	return s, nil
}

// Start listens and serves.
func (s *Server) Start(ctx context.Context) error {
	var err error
	if s.lis, err = net.Listen("tcp", s.cfg.Listen); err != nil {
		return fmt.Errorf("xDS listen: %w", err)
	}
	if s.cfg.AdminListen != "" {
		if s.adminLis, err = net.Listen("tcp", s.cfg.AdminListen); err != nil {
			s.lis.Close()
			return fmt.Errorf("admin listen: %w", err)
		}
	}
	ctx, s.cancel = context.WithCancel(ctx)
	var creds []grpc.ServerOption
	if s.cfg.TLS != nil {
		src, closeSrc, err := s.cfg.TLS.Open(ctx)
		if err != nil {
			s.lis.Close()
			return fmt.Errorf("tls: %w", err)
		}
		s.closers = append(s.closers, closeSrc)
		creds = append(creds, grpc.Creds(credentials.NewTLS(identity.ServerTLS(src, src, s.cfg.TLS.Policy))))
	}
	s.grpc = grpc.NewServer(append(creds,
		grpc.MaxConcurrentStreams(1<<16),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time: 30 * time.Second, Timeout: 10 * time.Second,
			MaxConnectionAge: s.cfg.MaxConnectionAge, MaxConnectionAgeGrace: time.Minute,
		}))...,
	)
	srv := serverv3.NewServer(ctx, s.Cache, &callbacks{tracker: s.Tracker, log: s.log, secretsAllowed: s.secretsAllowed})
	discovery.RegisterAggregatedDiscoveryServiceServer(s.grpc, srv)
	reflection.Register(s.grpc)
	s.goServe(func() error { return s.grpc.Serve(s.lis) })
	if s.cfg.Socket != "" {
		if err := s.serveSocket(srv); err != nil {
			s.cancel()
			s.grpc.Stop()
			if s.adminLis != nil {
				s.adminLis.Close()
			}
			return err
		}
	}
	s.warnAboutSecrets()
	if s.adminLis != nil {
		s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
		s.goServe(func() error { return s.admin.Serve(s.adminLis) })
	}
	// Watched before Start returns: a change made right after is seen.
	if done, err := s.src.Watch(ctx, s.reload); err != nil {
		s.log.Error("mesh source not watched; changes need a restart", "source", s.src.String(), "err", err)
	} else {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			<-done
		}()
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		// Federated bundles refreshed and SVIDs past half-life re-issued;
		// only what changed is pushed.
		periodic.Every(ctx, time.Minute, func(ctx context.Context) {
			s.Builder.RefreshBundles(ctx)
			s.reapply()
		})
	}()
	go func() {
		defer s.wg.Done()
		s.Rollouts.Run(ctx)
	}()
	s.log.Info("control plane listening", "xds", s.Addr(), "admin", s.AdminAddr(), "mesh", s.src.String())
	return nil
}

func (s *Server) goServe(f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("listener stopped", "err", err)
		}
	}()
}

// reload re-reads the mesh; a bad edit keeps the last good mesh.
func (s *Server) reload() {
	if err := s.Reload(); err != nil {
		s.log.Error("mesh not reloaded; keeping the last good model", "err", err)
	}
}

// Reload reads, validates and applies the source's mesh now. On error the last
// good mesh stays in force and the error is reported (LastError, status).
func (s *Server) Reload() error {
	m, err := s.src.Load()
	if err == nil {
		err = s.apply(m)
	}
	s.lastErrMu.Lock()
	s.lastErr = err
	s.lastErrMu.Unlock()
	return err
}

// apply reconciles the rollouts with m and publishes m with every rollout
// at the step in force.
func (s *Server) apply(m *model.Mesh) error {
	// Whatever the source, nothing unvalidated is translated (a file's
	// mesh passes again unchanged; a source that builds one in code may
	// have skipped a rule).
	if err := m.Validate(model.Checks{}); err != nil {
		return fmt.Errorf("%s: %w", s.src, err)
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.Rollouts.Sync(m)
	if err := s.Builder.Apply(s.Rollouts.Overlay(m)); err != nil {
		return err
	}
	s.spec = m
	return nil
}

// reapply publishes the last good mesh again, after a rollout moved or for
// SVID rotation.
func (s *Server) reapply() {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.spec == nil {
		return
	}
	if err := s.Builder.Apply(s.Rollouts.Overlay(s.spec)); err != nil {
		s.log.Error("mesh not republished", "err", err)
	}
}

// LastError is the most recent reload error, or nil.
func (s *Server) LastError() error {
	s.lastErrMu.Lock()
	defer s.lastErrMu.Unlock()
	return s.lastErr
}

// Addr is the bound xDS address.
func (s *Server) Addr() string {
	if s.lis == nil {
		return ""
	}
	return s.lis.Addr().String()
}

// AdminAddr is the bound admin address, or "".
func (s *Server) AdminAddr() string {
	if s.adminLis == nil {
		return ""
	}
	return s.adminLis.Addr().String()
}

// StatusReport is served at /v1/proxies.
type StatusReport struct {
	Mesh      string            `json:"mesh"`
	LastError string            `json:"last_error,omitempty"`
	Proxies   []xds.ProxyStatus `json:"proxies"`
}

// Status reports every proxy's sync state.
func (s *Server) Status() StatusReport {
	r := StatusReport{Proxies: s.Tracker.Status()}
	if m := s.Builder.Mesh(); m != nil {
		r.Mesh = m.Metadata.Name
	}
	if err := s.LastError(); err != nil {
		r.LastError = err.Error()
	}
	return r
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.Builder.Mesh() == nil {
			http.Error(w, "no mesh loaded", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/proxies", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	s.rolloutAPI(mux)
	s.routesAPI(mux)
	mux.HandleFunc("GET /", s.statusPage)
	return mux
}

// Stop ends serving.
func (s *Server) Stop(ctx context.Context) {
	if s.cancel != nil {
		s.cancel()
	}
	for _, g := range []*grpc.Server{s.grpc, s.sockGRPC} {
		if g == nil {
			continue
		}
		done := make(chan struct{})
		go func() { g.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			g.Stop()
		}
	}
	if s.admin != nil {
		_ = s.admin.Shutdown(ctx)
	}
	s.wg.Wait()
	for _, c := range s.closers {
		c()
	}
	s.Rollouts.Close()
}

// Run starts and blocks until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Stop(stop)
	return nil
}

// callbacks track streams per node and guard secrets.
type callbacks struct {
	tracker        *xds.Tracker
	log            *slog.Logger
	secretsAllowed func(context.Context, string) bool

	mu      sync.Mutex
	streams map[int64]*streamInfo
}

type streamInfo struct {
	ctx  context.Context
	node string
}

func (c *callbacks) open(ctx context.Context, id int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams == nil {
		c.streams = map[int64]*streamInfo{}
	}
	c.streams[id] = &streamInfo{ctx: ctx}
	return nil
}

func (c *callbacks) closed(id int64) {
	c.mu.Lock()
	st := c.streams[id]
	delete(c.streams, id)
	c.mu.Unlock()
	if st != nil && st.node != "" {
		c.tracker.StreamClosed(st.node)
	}
}

func (c *callbacks) request(id int64, node *corev3.Node, typeURL string) error {
	c.mu.Lock()
	st := c.streams[id]
	c.mu.Unlock()
	if st == nil {
		return nil
	}
	if st.node == "" && node.GetId() != "" {
		st.node = node.GetId()
		c.tracker.StreamOpened(st.node, node.GetCluster())
	}
	if node.GetId() != "" && node.GetId() != st.node {
		return fmt.Errorf("node id changed on stream from %q to %q", st.node, node.GetId())
	}
	if typeURL == xds.SecretType && !c.secretsAllowed(st.ctx, st.node) {
		c.log.Warn("secret request refused: stream not authenticated for this node", "node", st.node)
		return fmt.Errorf("node %q is not authorized to receive its secrets on this connection", st.node)
	}
	return nil
}

func (c *callbacks) OnStreamOpen(ctx context.Context, id int64, _ string) error {
	return c.open(ctx, id)
}
func (c *callbacks) OnStreamClosed(id int64, _ *corev3.Node) { c.closed(id) }
func (c *callbacks) OnStreamRequest(id int64, r *discovery.DiscoveryRequest) error {
	return c.request(id, r.GetNode(), r.GetTypeUrl())
}
func (c *callbacks) OnStreamResponse(context.Context, int64, *discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {
}
func (c *callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, _ string) error {
	return c.open(ctx, id)
}
func (c *callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) { c.closed(id) }
func (c *callbacks) OnStreamDeltaRequest(id int64, r *discovery.DeltaDiscoveryRequest) error {
	return c.request(id, r.GetNode(), r.GetTypeUrl())
}
func (c *callbacks) OnStreamDeltaResponse(int64, *discovery.DeltaDiscoveryRequest, *discovery.DeltaDiscoveryResponse) {
}
func (c *callbacks) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error {
	return errors.New("REST xDS is not supported")
}
func (c *callbacks) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}
