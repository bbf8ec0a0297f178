package extauthz

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/meshguard/meshguard/internal/hashchain"
)

// With decision_log.hash_chain the log is one chain, and a restarted
// authorizer continues it.
func TestAChainedDecisionLogContinuesAcrossARestart(t *testing.T) {
	h := newHarness(t, basePolicies, func(c *Config) { c.DecisionLog.HashChain = true })
	good := h.token("alice", "admin")
	h.decide(creq{method: "GET", path: "/o/1", token: good, ext: ordersExt})
	h.decide(creq{method: "GET", path: "/o/2", ext: ordersExt})
	h.decisions(2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	h.srv.Stop(ctx)
	cancel()

	again := startServer(t, h.cfg)
	again.decide(creq{method: "GET", path: "/o/3", token: good, ext: ordersExt})
	if got := again.decisions(3); got[2].Path != "/o/3" {
		t.Fatalf("third entry = %+v", got[2])
	}
	f, err := os.Open(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, _, brk, err := hashchain.Verify(f, &hashchain.Genesis)
	if brk != nil || err != nil || n != 3 {
		t.Fatalf("the log's chain: %d lines, %v %v", n, brk, err)
	}
}

func TestRotatingStandardOutputIsRefused(t *testing.T) {
	cfg := &Config{Policies: t.TempDir(), DecisionLog: DecisionLogConfig{Path: "-", MaxSizeMB: 10}}
	cfg.applyDefaults()
	if err := cfg.Validate(); err == nil {
		t.Fatal("max_size_mb with path \"-\" accepted")
	}
}
