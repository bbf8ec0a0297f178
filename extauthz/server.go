package extauthz

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/meshguard/meshguard/extauthz/decisionlog"
	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/extauthz/revocation"
	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/internal/admincmd"
	"github.com/meshguard/meshguard/internal/filewatch"
	"github.com/meshguard/meshguard/internal/grpcserver"
	"github.com/meshguard/meshguard/internal/hashchain"
	"github.com/meshguard/meshguard/internal/logfile"
	"github.com/meshguard/meshguard/internal/periodic"
	"github.com/meshguard/meshguard/internal/redisclient"
	"github.com/meshguard/meshguard/internal/telemetry"
)

// Server runs the authorizer's listeners: ext_authz gRPC, optional HTTP
// service mode, and admin.
type Server struct {
	cfg      *Config
	log      *slog.Logger
	Registry *prometheus.Registry
	Authz    *Authorizer
	store    *policy.Store
	verifier *jwt.Verifier
	dlog     *decisionlog.Logger
	dlogFile io.Closer
	tr       *tracing
	traceOff func(context.Context) error

	grpc   *grpc.Server
	health *health.Server
	http   *http.Server
	admin  *http.Server

	grpcLis, httpLis, adminLis net.Listener
	cancel                     context.CancelFunc
	wg                         sync.WaitGroup

	tlsConf *tls.Config // nil: plaintext listeners
	closers []func()

	redis       redis.UniversalClient // nil without the redis block
	revocations *revocation.List
	adminToken  string
}

// NewServer builds the server from cfg: loads policies (an error is logged
// and the server starts unready, so a broken rollout is visible on /readyz
// rather than a crash loop), reads key files, opens the decision log.
func NewServer(ctx context.Context, cfg *Config, log *slog.Logger) (*Server, error) {
	s := &Server{cfg: cfg, log: log, Registry: prometheus.NewRegistry()}
	s.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := NewMetrics(s.Registry)

	opts := []policy.StoreOption{policy.WithLogger(log), policy.WithReloadHook(m.onReload), policy.WithResultCache(cfg.DecisionCacheSize)}
	if cfg.StrictSchema {
		sc, err := cfg.Schema()
		if err != nil {
			return nil, fmt.Errorf("strict_schema: %w", err)
		}
		opts = append(opts, policy.WithSchema(sc))
	}
	s.store = policy.NewStore(cfg.Policies, cfg.Entities, opts...)
	if err := s.store.Reload(); err != nil {
		log.Error("initial policy load incomplete; not ready until every set loads", "err", err)
	}
	if len(cfg.JWT.Providers) > 0 {
		v, err := jwt.New(cfg.JWT.Providers, jwt.Options{
			Leeway:        cfg.JWT.Leeway,
			MaxTokenBytes: cfg.JWT.MaxTokenBytes,
			CacheSize:     cfg.JWT.CacheSize,
			Logger:        log,
		})
		if err != nil {
			return nil, err
		}
		s.verifier = v
	}
	if err := s.openDecisionLog(m); err != nil {
		return nil, err
	}
	tp, enabled, shutdown, err := telemetry.NewTracerProvider(ctx, telemetry.TracingOptions{
		Exporter: cfg.Tracing.Exporter, Endpoint: cfg.Tracing.Endpoint, Insecure: cfg.Tracing.Insecure,
		SampleRatio: cfg.Tracing.SampleRatio, ServiceName: "meshguard-authz",
	})
	if err != nil {
		return nil, err
	}
	s.traceOff = shutdown
	s.tr = &tracing{tracer: tp.Tracer("github.com/meshguard/meshguard/extauthz"), enabled: enabled,
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	s.Authz = NewAuthorizer(cfg, s.store, s.verifier, m, s.dlog, log)
	if cfg.JWTSVID != nil {
		sv, err := newSVIDVerifier(ctx, cfg.JWTSVID, cfg.JWT.MaxTokenBytes)
		if err != nil {
			return nil, err
		}
		s.Authz.svids = sv
		s.closers = append(s.closers, sv.close)
	}
	if cfg.Redis != nil {
		rc, err := redisclient.New(*cfg.Redis)
		if err != nil {
			return nil, err
		}
		s.redis = rc
		s.closers = append(s.closers, func() { _ = rc.Close() })
		s.Registry.MustRegister(redisclient.PoolCollector("authz", rc))
		s.revocations = revocation.New(rc, revocation.Options{Prefix: cfg.Redis.KeyPrefix, Resync: cfg.Revocation.Resync, Log: log})
		s.Authz.revocations = s.revocations
	}
	if cfg.AdminTokenFile != "" {
		tok, err := admincmd.ReadToken(cfg.AdminTokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin_token_file: %w", err)
		}
		s.adminToken = tok
	}
	if cfg.TLS != nil {
		src, closeSrc, err := cfg.TLS.Open(ctx)
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		s.closers = append(s.closers, closeSrc)
		s.tlsConf = identity.ServerTLS(src, src, cfg.TLS.Policy)
	}
	return s, nil
}

func (s *Server) openDecisionLog(m *Metrics) error {
	cfg := s.cfg.DecisionLog
	var (
		w    io.Writer
		opts = []decisionlog.Option{decisionlog.WithErrorHandler(s.decisionLogError())}
	)
	switch cfg.Path {
	case "":
		return nil
	case "-":
		w = os.Stdout
		if cfg.HashChain {
			opts = append(opts, decisionlog.WithChain(hashchain.Chain{}))
		}
	default:
		if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
			return fmt.Errorf("decision_log.path: %w", err)
		}
		if cfg.HashChain {
			// Continue the chain of what the file (or, just rotated, the
			// file before it) already holds.
			chain, err := hashchain.Resume(cfg.Path)
			if err != nil {
				return fmt.Errorf("decision_log.hash_chain: %w", err)
			}
			opts = append(opts, decisionlog.WithChain(chain))
		}
		f, err := logfile.Open(cfg.Path, int64(cfg.MaxSizeMB)<<20, cfg.MaxBackups)
		if err != nil {
			return fmt.Errorf("decision_log.path: %w", err)
		}
		w, s.dlogFile = f, f
	}
	s.dlog = decisionlog.New(w, cfg.Buffer, m.DecisionDropped.Inc, opts...)
	return nil
}

// decisionLogError logs the decision log's write errors, at most one every
// 10 seconds: a full disk fails every batch, and
// meshguard_authz_decision_log_dropped_total counts each entry lost.
func (s *Server) decisionLogError() func(error) {
	var last time.Time // only the log's writer goroutine calls
	return func(err error) {
		if now := time.Now(); now.Sub(last) >= 10*time.Second {
			last = now
			s.log.Warn("decision log write failed", "err", err)
		}
	}
}

// Start binds every listener, starts serving and the file watchers, and
// returns. Stop ends them.
func (s *Server) Start(ctx context.Context) error {
	var err error
	if s.grpcLis, err = net.Listen("tcp", s.cfg.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if s.adminLis, err = net.Listen("tcp", s.cfg.AdminListen); err != nil {
		s.grpcLis.Close()
		return fmt.Errorf("admin_listen: %w", err)
	}
	if s.cfg.HTTPListen != "" {
		if s.httpLis, err = net.Listen("tcp", s.cfg.HTTPListen); err != nil {
			s.grpcLis.Close()
			s.adminLis.Close()
			return fmt.Errorf("http_listen: %w", err)
		}
	}
	ctx, s.cancel = context.WithCancel(ctx)

	opts := grpcserver.Options(s.cfg.MaxRequestBytes)
	if s.tlsConf != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tlsConf)))
	}
	s.grpc = grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(s.grpc, &checkService{a: s.Authz, tr: s.tr})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.updateHealth()

	mux := adminHandler(s.Authz, s.Registry, s.cfg.AdminPprof)
	s.revocationAPI(mux)
	s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.goServe("grpc", func() error { return s.grpc.Serve(s.grpcLis) })
	s.goServe("admin", func() error { return s.admin.Serve(s.adminLis) })
	if s.httpLis != nil {
		s.http = &http.Server{
			Handler:           &httpService{a: s.Authz, tr: s.tr, prefix: s.cfg.HTTPPathPrefix},
			ReadHeaderTimeout: 5 * time.Second,
			MaxHeaderBytes:    s.cfg.MaxRequestBytes,
		}
		lis := s.httpLis
		if s.tlsConf != nil {
			lis = tls.NewListener(lis, s.tlsConf)
		}
		s.goServe("http", func() error { return s.http.Serve(lis) })
	}

	if s.verifier != nil {
		s.verifier.Start(ctx)
	}
	s.watchPolicies(ctx)
	if s.revocations != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.revocations.Run(ctx)
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		periodic.Every(ctx, 500*time.Millisecond, func(context.Context) { s.updateHealth() })
	}()
	s.log.Info("authorizer listening", "grpc", s.GRPCAddr(), "http", s.HTTPAddr(), "admin", s.AdminAddr(),
		"policies", s.cfg.Policies, "ready", s.Authz.Ready())
	return nil
}

func (s *Server) goServe(name string, serve func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("listener stopped", "listener", name, "err", err)
		}
	}()
}

func (s *Server) watchPolicies(ctx context.Context) {
	dirs := []string{s.cfg.Policies}
	if s.cfg.Entities != "" {
		dirs = append(dirs, filepath.Dir(s.cfg.Entities))
	}
	fw, err := filewatch.New(dirs, true)
	if err != nil {
		s.log.Error("policies not watched; changes need a restart", "err", err)
		return
	}
	// Only policy files and the entities file matter: other files next to
	// them (logs, run state) must not keep postponing reloads.
	policies := filepath.Clean(s.cfg.Policies) + string(filepath.Separator)
	fw.Only(func(p string) bool {
		return strings.HasPrefix(p, policies) || p == filepath.Clean(s.cfg.Policies) || (s.cfg.Entities != "" && p == filepath.Clean(s.cfg.Entities))
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fw.Run(ctx, func() {
			_ = s.store.Reload() // errors are logged and counted by the store
			s.updateHealth()
		})
	}()
}

// updateHealth mirrors readiness into the gRPC health service, for Envoy's
// and Kubernetes' gRPC health checks.
func (s *Server) updateHealth() {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if s.Authz.Ready() {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, st)
}

// GRPCAddr is the bound ext_authz gRPC address.
func (s *Server) GRPCAddr() string { return addr(s.grpcLis) }

// HTTPAddr is the bound HTTP service address, or "".
func (s *Server) HTTPAddr() string { return addr(s.httpLis) }

// AdminAddr is the bound admin address.
func (s *Server) AdminAddr() string { return addr(s.adminLis) }

func addr(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// Stop drains in-flight requests (up to ctx's deadline), then closes
// everything and flushes the decision log and traces.
func (s *Server) Stop(ctx context.Context) {
	if s.cancel != nil {
		s.cancel()
	}
	if s.health != nil {
		s.health.Shutdown()
	}
	done := make(chan struct{})
	go func() {
		if s.grpc != nil {
			s.grpc.GracefulStop()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
	}
	for _, h := range []*http.Server{s.http, s.admin} {
		if h != nil {
			_ = h.Shutdown(ctx)
		}
	}
	s.wg.Wait()
	_ = s.dlog.Close(ctx)
	if s.dlogFile != nil {
		_ = s.dlogFile.Close()
	}
	_ = s.traceOff(ctx)
	for _, c := range s.closers {
		c()
	}
}

// Run starts the server and blocks until ctx is done, then stops it.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	s.log.Info("authorizer stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.Stop(stopCtx)
	return nil
}
