package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/internal/redisclient"
	"github.com/meshguard/meshguard/ratelimit"
)

// Quickstart ports of the shared state.
const (
	upRedis          = "127.0.0.1:16379"
	upRateLimit      = "127.0.0.1:8081"
	upRateLimitAdmin = "127.0.0.1:6070"
)

// sharedState is the quickstart's Redis and rate-limit service, or a note
// on how to get them.
type sharedState struct {
	redis *redisclient.Config // nil: off
	rl    *ratelimit.Server
	note  string
}

// startSharedState starts redis-server (a child, without persistence) and
// the rate-limit service on it, when redis-server is installed. Without
// it the quickstart runs as before, and says how to turn it on.
func startSharedState(ctx context.Context, o upOptions, log *slog.Logger, children *[]*exec.Cmd) (*sharedState, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return &sharedState{note: "off: redis-server is not installed (apt-get install redis-server, then restart:\n" +
			"                  token revocation and global rate limits need it)"}, nil
	}
	dir := filepath.Join(o.runDir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(o.runDir, "logs", "redis.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", "16379", "--save", "", "--appendonly", "no", "--dir", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	*children = append(*children, cmd)
	rc := &redisclient.Config{Addrs: []string{upRedis}}
	rc.ApplyDefaults()
	client, err := redisclient.New(*rc)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for redisclient.Ping(ctx, client, 200*time.Millisecond) != nil {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("redis-server on %s did not answer within 10s (see %s)", upRedis, logf.Name())
		}
		time.Sleep(50 * time.Millisecond)
	}
	rl, err := ratelimit.NewServer(ratelimit.Settings{Config: filepath.Join(o.configDir, "ratelimit.yaml"),
		Listen: upRateLimit, AdminListen: upRateLimitAdmin, Redis: *rc}, log)
	if err != nil {
		return nil, err
	}
	if err := rl.Start(ctx); err != nil {
		return nil, err
	}
	return &sharedState{redis: rc, rl: rl, note: fmt.Sprintf("Redis %s (token revocation: meshguard revoke)\n"+
		"                  rate-limit service %s   admin http://%s/v1/status", upRedis, rl.GRPCAddr(), rl.AdminAddr())}, nil
}

// configureAuthz gives the authorizer the revocation list: the demo
// provider's tokens are checked, and refused while Redis is away.
func (s *sharedState) configureAuthz(c *extauthz.Config) {
	if s.redis == nil {
		return
	}
	rc := *s.redis
	c.Redis = &rc
	for i := range c.JWT.Providers {
		if c.JWT.Providers[i].Revocation == nil {
			c.JWT.Providers[i].Revocation = &jwt.RevocationConfig{OnUnavailable: jwt.OnUnavailableDeny}
		}
	}
}

func (s *sharedState) stop() {
	if s.rl != nil {
		stopWithin(10*time.Second, s.rl.Stop)
	}
}
