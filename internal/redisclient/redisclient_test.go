package redisclient

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshguard/meshguard/internal/redistest"
)

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no address", Config{}, "redis.addrs: required"},
		{"not host:port", Config{Addrs: []string{"localhost"}}, `redis.addrs: "localhost" is not host:port`},
		{"unknown mode", Config{Mode: "ring", Addrs: []string{"a:1"}}, `redis.mode: "ring"`},
		{"two standalone servers", Config{Addrs: []string{"a:1", "b:1"}}, "standalone takes one address"},
		{"sentinel without a master", Config{Mode: ModeSentinel, Addrs: []string{"a:26379"}}, "redis.master_name: required"},
		{"a master outside sentinel mode", Config{Addrs: []string{"a:1"}, MasterName: "m"}, "redis.master_name: only in sentinel mode"},
		{"a database in a cluster", Config{Mode: ModeCluster, Addrs: []string{"a:1"}, DB: 2}, "redis.db"},
		{"a negative timeout", Config{Addrs: []string{"a:1"}, ReadTimeout: -time.Second}, "redis.read_timeout"},
		{"a certificate without its key", Config{Addrs: []string{"a:1"}, TLS: &TLS{CertFile: "c.pem"}}, "redis.tls: cert_file and key_file go together"},
	} {
		cfg := c.cfg
		cfg.ApplyDefaults()
		err := cfg.Validate("redis")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	ok := Config{Addrs: []string{"127.0.0.1:6379"}}
	ok.ApplyDefaults()
	if err := ok.Validate("redis"); err != nil {
		t.Errorf("a plain address: %v", err)
	}
}

// An ACL user whose password comes from a file; a wrong password is
// refused, and the error never carries the password.
func TestACLUserWithAPasswordFile(t *testing.T) {
	srv := redistest.Start(t, "--user", "meshguard", "on", ">s3cret-pass", "~*", "+@all", "--user", "default", "off")
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	write := func(s string) {
		if err := os.WriteFile(pw, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	write("s3cret-pass\n")
	c, err := New(Config{Addrs: []string{srv.Addr()}, Username: "meshguard", PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Ping(ctx, c, time.Second); err != nil {
		t.Fatalf("the right password: %v", err)
	}
	write("wrong-password")
	bad, err := New(Config{Addrs: []string{srv.Addr()}, Username: "meshguard", PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	err = Ping(ctx, bad, time.Second)
	if err == nil || strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("a wrong password: %v", err)
	}
	if _, err := New(Config{Addrs: []string{srv.Addr()}, PasswordFile: filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "redis.password_file") {
		t.Fatalf("a missing password file: %v", err)
	}
}

// Sentinel mode finds the master through the Sentinels.
func TestSentinelModeFindsTheMaster(t *testing.T) {
	st := redistest.StartSentinel(t, "mg")
	c, err := New(Config{Mode: ModeSentinel, Addrs: st.Addrs(), MasterName: "mg"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Written to the master: the master's own client reads it.
	if v, err := st.Master.Client().Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("the master has %q %v", v, err)
	}
}
