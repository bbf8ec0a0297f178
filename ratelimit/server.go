package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/meshguard/meshguard/internal/grpcserver"
	"github.com/meshguard/meshguard/internal/periodic"
	"github.com/meshguard/meshguard/internal/redisclient"
)

// Settings configure the service process.
type Settings struct {
	// Config is an envoyproxy/ratelimit configuration file or directory.
	Config string
	// Listen serves gRPC RLS (default 127.0.0.1:8081, envoyproxy/ratelimit's port).
	Listen string
	// AdminListen serves /healthz, /readyz, /metrics, /v1/status (default 127.0.0.1:6070).
	AdminListen string
	Redis       redisclient.Config
	Window      string
	FailureMode string
	HeadersOff  bool
	// Timeout bounds one Redis pipeline (default 500ms): past it, the
	// failure mode answers.
	Timeout time.Duration
	// Pprof serves net/http/pprof on the admin listener.
	Pprof bool
	// Pipelines is how many Redis pipelines may be in flight at once
	// (CounterOptions.Pipelines).
	Pipelines int
}

// Validate checks the settings, naming each flag.
func (s *Settings) Validate() error {
	var errs []error
	if s.Config == "" {
		errs = append(errs, errors.New("--config: required: an envoyproxy/ratelimit configuration file or directory"))
	}
	switch s.Window {
	case "", WindowFixed, WindowSliding:
	default:
		errs = append(errs, fmt.Errorf("--window %q: want fixed or sliding", s.Window))
	}
	switch s.FailureMode {
	case "", FailOpen, FailClosed:
	default:
		errs = append(errs, fmt.Errorf("--failure-mode %q: want open or closed", s.FailureMode))
	}
	s.Redis.ApplyDefaults()
	if err := s.Redis.Validate("redis"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Server is the rate-limit service process: gRPC, admin, reloads.
type Server struct {
	Service  *Service
	Registry *prometheus.Registry

	settings Settings
	log      *slog.Logger
	redis    redis.UniversalClient
	counter  *Counter
	health   *health.Server

	grpcLis, adminLis net.Listener
	grpc              *grpc.Server
	admin             *http.Server
	cancel            context.CancelFunc
	wg                sync.WaitGroup
}

// NewServer loads the configuration (it must load) and connects to Redis
// (which need not be up yet: requests apply the failure mode until it is).
func NewServer(s Settings, log *slog.Logger) (*Server, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cfg, err := Load(s.Config)
	if err != nil {
		return nil, err
	}
	rc, err := redisclient.New(s.Redis)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		redisclient.PoolCollector("ratelimit", rc))
	srv := &Server{Registry: reg, settings: s, log: log, redis: rc}
	m := NewMetrics(reg)
	srv.counter = NewCounter(rc, CounterOptions{Timeout: s.Timeout, Pipelines: s.Pipelines, Batches: m.Pipelines})
	srv.Service = NewService(cfg, srv.counter, Options{Window: s.Window, FailureMode: s.FailureMode, KeyPrefix: s.Redis.KeyPrefix,
		HeadersOff: s.HeadersOff, Log: log, Metrics: m})
	return srv, nil
}

// Start listens and serves until Stop.
func (srv *Server) Start(ctx context.Context) error {
	var err error
	if srv.grpcLis, err = net.Listen("tcp", orDefault(srv.settings.Listen, "127.0.0.1:8081")); err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if srv.adminLis, err = net.Listen("tcp", orDefault(srv.settings.AdminListen, "127.0.0.1:6070")); err != nil {
		srv.grpcLis.Close()
		return fmt.Errorf("--admin: %w", err)
	}
	ctx, srv.cancel = context.WithCancel(ctx)
	srv.grpc = grpc.NewServer(grpcserver.Options(1 << 20)...)
	rlsv3.RegisterRateLimitServiceServer(srv.grpc, srv.Service)
	srv.health = health.NewServer()
	healthpb.RegisterHealthServer(srv.grpc, srv.health)
	reflection.Register(srv.grpc)
	srv.admin = &http.Server{Handler: srv.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	srv.serve(func() error { return srv.grpc.Serve(srv.grpcLis) })
	srv.serve(func() error { return srv.admin.Serve(srv.adminLis) })
	srv.serve(func() error { return srv.Service.Watch(ctx, srv.settings.Config) })
	srv.serve(func() error {
		periodic.Every(ctx, time.Second, func(ctx context.Context) { srv.updateHealth(ctx) })
		return nil
	})
	srv.log.Info("rate-limit service listening", "grpc", srv.GRPCAddr(), "admin", srv.AdminAddr(), "config", srv.settings.Config,
		"domains", len(srv.Service.Config().domains), "window", srv.Service.o.Window, "failure_mode", srv.Service.o.FailureMode)
	return nil
}

func (srv *Server) serve(f func() error) {
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, context.Canceled) {
			srv.log.Error("rate-limit service", "err", err)
		}
	}()
}

// Run is Start, then Stop when ctx ends.
func (srv *Server) Run(ctx context.Context) error {
	if err := srv.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Stop(stopCtx)
	return nil
}

// Stop drains gRPC, closes the listeners and Redis.
func (srv *Server) Stop(ctx context.Context) {
	if srv.cancel != nil {
		srv.cancel()
	}
	done := make(chan struct{})
	go func() { srv.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		srv.grpc.Stop()
	}
	_ = srv.admin.Shutdown(ctx)
	srv.wg.Wait()
	srv.counter.Close()
	_ = srv.redis.Close()
}

// GRPCAddr and AdminAddr are the bound addresses.
func (srv *Server) GRPCAddr() string  { return srv.grpcLis.Addr().String() }
func (srv *Server) AdminAddr() string { return srv.adminLis.Addr().String() }

// Status is /v1/status.
type Status struct {
	Ready       bool     `json:"ready"`
	Redis       string   `json:"redis"` // "ok" or why not
	Domains     []string `json:"domains"`
	ConfigError string   `json:"config_error,omitempty"`
	Window      string   `json:"window"`
	FailureMode string   `json:"failure_mode"`
}

func (srv *Server) status(ctx context.Context) Status {
	st := Status{Redis: "ok", Domains: srv.Service.Config().Domains(), Window: srv.Service.o.Window, FailureMode: srv.Service.o.FailureMode}
	if err := redisclient.Ping(ctx, srv.redis, 500*time.Millisecond); err != nil {
		st.Redis = err.Error()
	}
	if err := srv.Service.LastError(); err != nil {
		st.ConfigError = err.Error()
	}
	// Ready means requests are counted: with fail-open, an unreachable
	// Redis would let every request through uncounted.
	st.Ready = st.Redis == "ok"
	return st
}

func (srv *Server) updateHealth(ctx context.Context) {
	s := healthpb.HealthCheckResponse_NOT_SERVING
	if srv.status(ctx).Ready {
		s = healthpb.HealthCheckResponse_SERVING
	}
	srv.health.SetServingStatus("", s)
	srv.health.SetServingStatus("envoy.service.ratelimit.v3.RateLimitService", s)
}

func (srv *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := srv.status(r.Context())
		if !st.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		writeJSON(w, st)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, srv.status(r.Context())) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(srv.Registry, promhttp.HandlerOpts{}))
	if srv.settings.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("content-type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
