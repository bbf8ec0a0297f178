package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshguard/meshguard/internal/gctune"
	"github.com/meshguard/meshguard/internal/redisclient"
	"github.com/meshguard/meshguard/internal/telemetry"
	"github.com/meshguard/meshguard/ratelimit"
)

func newRateLimitCmd() *cobra.Command {
	var s ratelimit.Settings
	var logLevel string
	cmd := &cobra.Command{
		Use:   "ratelimit --config PATH --redis-addr HOST:PORT",
		Short: "Run the global rate-limit service (Envoy RLS v3 on Redis, envoyproxy/ratelimit's config format)",
		Long: `Run Envoy's Rate Limit Service (envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit),
counting in Redis so that a limit holds across every sidecar and every replica.

--config is an envoyproxy/ratelimit configuration file, or a directory of them
(*.yaml, *.yml), read unchanged: a domain and nested descriptors with
rate_limit {unit, requests_per_unit}, unlimited, shadow_mode, name and replaces.
Files are reloaded when they change; a file that does not load changes nothing
(the last good configuration keeps serving; /v1/status says why).

Counting: --window fixed (per whole unit, as envoyproxy/ratelimit) or sliding
(the previous window weighted by how much of it a window ending now covers).
Each increment is one atomic Redis operation: limits are exact across replicas.
When Redis cannot count, --failure-mode open answers OK and closed answers
OVER_LIMIT; both are counted in meshguard_ratelimit_redis_errors_total.

Responses carry a status per descriptor (current limit, limit_remaining,
duration_until_reset) and x-ratelimit-limit, -remaining and -reset headers for
the descriptor closest to its limit (--no-headers turns them off).

Admin (--admin): /healthz, /readyz (Redis answers), /metrics, /v1/status.
See docs/ratelimit.md.`,
		Example: `  meshguard ratelimit --config ./limits --redis-addr 127.0.0.1:6379

  # Sentinel, ACL user, password from a mounted secret, fail closed
  meshguard ratelimit --config /etc/ratelimit --redis-mode sentinel --redis-master mymaster \
    --redis-addr sentinel-0:26379,sentinel-1:26379 --redis-username meshguard \
    --redis-password-file /var/run/secrets/redis/password --failure-mode closed`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := telemetry.NewLogger(os.Stderr, logLevel, "text")
			if err != nil {
				return err
			}
			redisclient.SetLogger(log)
			srv, err := ratelimit.NewServer(s, log)
			if err != nil {
				return err
			}
			log.Info("garbage collector", "setting", gctune.Apply(gctune.AuthzPercent))
			return srv.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.Config, "config", "", "envoyproxy/ratelimit configuration file or directory")
	f.StringVar(&s.Listen, "listen", "127.0.0.1:8081", "gRPC address (RLS, health, reflection)")
	f.StringVar(&s.AdminListen, "admin", "127.0.0.1:6070", "admin address (/healthz, /readyz, /metrics, /v1/status)")
	f.StringVar(&s.Window, "window", ratelimit.WindowFixed, "fixed or sliding")
	f.StringVar(&s.FailureMode, "failure-mode", ratelimit.FailOpen, "when Redis cannot count: open (OK) or closed (OVER_LIMIT)")
	f.IntVar(&s.Pipelines, "redis-pipelines", 1, "Redis pipelines in flight at once: requests arriving meanwhile share the next one")
	f.BoolVar(&s.Pprof, "admin-pprof", false, "serve Go's net/http/pprof under /debug/pprof/ on the admin listener")
	f.BoolVar(&s.HeadersOff, "no-headers", false, "do not add x-ratelimit-* headers to responses")
	f.DurationVar(&s.Timeout, "redis-timeout", 500*time.Millisecond, "bound on one Redis round trip before the failure mode answers")
	redisFlags(cmd, &s.Redis)
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
