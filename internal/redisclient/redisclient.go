// Package redisclient connects meshguard's shared state to Redis. One
// configuration block — standalone, Sentinel or Cluster; TLS; an ACL user
// with a password read from a file — serves the authorizer's revocation
// list and the rate-limit service alike, through go-redis.
//
// The password is read from a file (a mounted Secret) and never appears in
// the configuration, logs or errors.
package redisclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Modes.
const (
	ModeStandalone = "standalone"
	ModeSentinel   = "sentinel"
	ModeCluster    = "cluster"
)

// Config is the `redis:` block of a configuration file.
type Config struct {
	// Mode is standalone (default), sentinel or cluster.
	Mode string `yaml:"mode"`
	// Addrs are host:port: the server (standalone), the Sentinels, or
	// some of the cluster's nodes.
	Addrs []string `yaml:"addrs"`
	// MasterName is the Sentinel master's name (sentinel mode).
	MasterName string `yaml:"master_name"`
	// Username and PasswordFile authenticate (Redis 6 ACL; the password
	// alone for requirepass). The file holds the password, trailing
	// newline ignored.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// SentinelPasswordFile authenticates to the Sentinels themselves.
	SentinelPasswordFile string `yaml:"sentinel_password_file"`
	DB                   int    `yaml:"db"`
	TLS                  *TLS   `yaml:"tls"`
	// DialTimeout, ReadTimeout and WriteTimeout bound each connection
	// attempt and each command (defaults 1s, 500ms, 500ms): a slow Redis
	// must fail fast into the configured fallback, not hold requests.
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// PoolSize is connections per node (default 10 per CPU).
	PoolSize int `yaml:"pool_size"`
	// KeyPrefix starts every key meshguard writes (default "meshguard:"),
	// so one Redis can serve several meshes.
	KeyPrefix string `yaml:"key_prefix"`
}

// TLS configures TLS to Redis.
type TLS struct {
	// CAFile verifies the server (default: the system roots).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, when Redis asks for one.
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// Defaults.
const (
	DefaultDialTimeout  = time.Second
	DefaultReadTimeout  = 500 * time.Millisecond
	DefaultWriteTimeout = 500 * time.Millisecond
	DefaultKeyPrefix    = "meshguard:"
)

// ApplyDefaults fills unset fields.
func (c *Config) ApplyDefaults() {
	if c.Mode == "" {
		c.Mode = ModeStandalone
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
}

// Validate checks the block; each error names its key under prefix (e.g.
// "redis").
func (c *Config) Validate(prefix string) error {
	var errs []error
	add := func(key, msg string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(msg, args...)))
	}
	switch c.Mode {
	case ModeStandalone, ModeSentinel, ModeCluster:
	default:
		add("mode", "%q: want standalone, sentinel or cluster", c.Mode)
	}
	if len(c.Addrs) == 0 {
		add("addrs", "required: at least one host:port")
	}
	for _, a := range c.Addrs {
		if i := strings.LastIndexByte(a, ':'); i <= 0 || i == len(a)-1 {
			add("addrs", "%q is not host:port", a)
		}
	}
	if c.Mode == ModeStandalone && len(c.Addrs) > 1 {
		add("addrs", "standalone takes one address (sentinel or cluster take several)")
	}
	if c.Mode == ModeSentinel && c.MasterName == "" {
		add("master_name", "required in sentinel mode")
	}
	if c.Mode != ModeSentinel && (c.MasterName != "" || c.SentinelPasswordFile != "") {
		add("master_name", "only in sentinel mode")
	}
	if c.Mode == ModeCluster && c.DB != 0 {
		add("db", "a cluster has only database 0")
	}
	for key, d := range map[string]time.Duration{"dial_timeout": c.DialTimeout, "read_timeout": c.ReadTimeout, "write_timeout": c.WriteTimeout} {
		if d < 0 || d > time.Minute {
			add(key, "must be between 0 and 1m")
		}
	}
	if c.PoolSize < 0 || c.PoolSize > 10000 {
		add("pool_size", "must be between 0 and 10000")
	}
	if t := c.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		add("tls", "cert_file and key_file go together")
	}
	return errors.Join(errs...)
}

// New connects to Redis as c says (c must have been validated). It does
// not wait for Redis: a command fails until it is reachable.
func New(c Config) (redis.UniversalClient, error) {
	c.ApplyDefaults()
	password, err := readSecret(c.PasswordFile, "password_file")
	if err != nil {
		return nil, err
	}
	sentinelPassword, err := readSecret(c.SentinelPasswordFile, "sentinel_password_file")
	if err != nil {
		return nil, err
	}
	opts := &redis.UniversalOptions{
		Addrs:            c.Addrs,
		MasterName:       c.MasterName,
		Username:         c.Username,
		Password:         password,
		SentinelPassword: sentinelPassword,
		DB:               c.DB,
		DialTimeout:      c.DialTimeout,
		ReadTimeout:      c.ReadTimeout,
		WriteTimeout:     c.WriteTimeout,
		PoolSize:         c.PoolSize,
		// Fail fast: the callers have a fallback for an unreachable Redis.
		MaxRetries:    1,
		IsClusterMode: c.Mode == ModeCluster,
		// CLIENT SETINFO is refused by some managed Redis; it tells the
		// server our library name, which nothing here needs.
		DisableIdentity: true,
		// RESP2: meshguard uses no RESP3 feature (push notifications,
		// client-side caching), whose processing otherwise runs on every
		// command.
		Protocol: 2,
	}
	if c.TLS != nil {
		if opts.TLSConfig, err = tlsConfig(c.TLS); err != nil {
			return nil, err
		}
	}
	return redis.NewUniversalClient(opts), nil
}

func readSecret(path, key string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		// The error names the file, never its content.
		return "", fmt.Errorf("redis.%s: %w", key, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func tlsConfig(t *TLS) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("redis.tls.ca_file %s: no PEM certificate", t.CAFile)
		}
		conf.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis.tls: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// Ping reports whether Redis answers within timeout.
func Ping(ctx context.Context, c redis.UniversalClient, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Ping(ctx).Err()
}

// PoolCollector exports the connection pool's state as Prometheus
// metrics (meshguard_redis_pool_*), labelled with the client's role.
func PoolCollector(role string, c redis.UniversalClient) prometheus.Collector {
	return &poolCollector{c: c, labels: prometheus.Labels{"client": role}}
}

type poolCollector struct {
	c      redis.UniversalClient
	labels prometheus.Labels
}

func (p *poolCollector) desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("meshguard_redis_pool_"+name, help, nil, p.labels)
}

func (p *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(p, ch)
}

func (p *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := p.c.PoolStats()
	for _, m := range []struct {
		name, help string
		kind       prometheus.ValueType
		v          uint32
	}{
		{"hits_total", "Connections taken from the pool.", prometheus.CounterValue, s.Hits},
		{"misses_total", "Connections that had to be dialled.", prometheus.CounterValue, s.Misses},
		{"timeouts_total", "Waits for a free connection that timed out.", prometheus.CounterValue, s.Timeouts},
		{"connections", "Open connections.", prometheus.GaugeValue, s.TotalConns},
		{"idle_connections", "Idle connections.", prometheus.GaugeValue, s.IdleConns},
	} {
		ch <- prometheus.MustNewConstMetric(p.desc(m.name, m.help), m.kind, float64(m.v))
	}
}

// SetLogger sends go-redis's own messages (reconnects, Sentinel
// failovers) to log at info level, instead of its default standard-error
// logger. The setting is process-wide, as go-redis's logger is.
func SetLogger(log *slog.Logger) {
	redis.SetLogger(slogAdapter{log})
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Printf(ctx context.Context, format string, v ...any) {
	a.log.InfoContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
