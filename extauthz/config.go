package extauthz

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/extauthz/schema"
	"github.com/meshguard/meshguard/internal/redisclient"
	"github.com/meshguard/meshguard/internal/yamlfile"
)

// Config is the authorizer's configuration file (docs/configuration.md).
// Relative paths are resolved against the file's directory.
type Config struct {
	Listen         string `yaml:"listen"`
	HTTPListen     string `yaml:"http_listen"`
	HTTPPathPrefix string `yaml:"http_path_prefix"`
	AdminListen    string `yaml:"admin_listen"`
	// AdminPprof serves net/http/pprof under /debug/pprof/ on the admin listener.
	AdminPprof bool   `yaml:"admin_pprof"`
	Policies   string `yaml:"policies"`
	Entities   string `yaml:"entities"`
	// StrictSchema refuses a policy set with a policy that does not
	// type-check against the schema, as if it did not parse.
	StrictSchema bool `yaml:"strict_schema"`
	// SchemaFile replaces the built-in schema of the request model
	// (`meshguard policy schema` prints it).
	SchemaFile      string        `yaml:"schema_file"`
	DecisionTimeout time.Duration `yaml:"decision_timeout"`
	MaxRequestBytes int           `yaml:"max_request_bytes"`
	// DecisionCacheSize bounds the policy evaluation results kept per load
	// of the policies (docs/configuration.md); negative disables the cache.
	DecisionCacheSize int `yaml:"decision_cache_size"`
	// RequestHeaders are copied into context.request.headers for policies.
	RequestHeaders []string  `yaml:"request_headers"`
	JWT            JWTConfig `yaml:"jwt"`
	// JWTSVID accepts workload JWT-SVIDs as bearer tokens (optional).
	JWTSVID *JWTSVIDConfig `yaml:"jwt_svid"`
	// TLS serves the gRPC and HTTP listeners over mTLS with SPIFFE authorization (optional).
	TLS         *TLSConfig        `yaml:"tls"`
	Response    ResponseConfig    `yaml:"response"`
	DecisionLog DecisionLogConfig `yaml:"decision_log"`
	Tracing     TracingConfig     `yaml:"tracing"`
	LogLevel    string            `yaml:"log_level"`
	LogFormat   string            `yaml:"log_format"`
	// Redis holds state shared by every replica: the revocation list.
	Redis *redisclient.Config `yaml:"redis"`
	// Revocation configures the revocation list (with Redis).
	Revocation RevocationConfig `yaml:"revocation"`
	// AdminTokenFile holds the bearer token the admin listener's write
	// endpoints (POST /v1/revocations) require. Without it they are
	// served only when the admin listener is on loopback.
	AdminTokenFile string `yaml:"admin_token_file"`
	// Destinations give route settings by the destination workload's
	// SPIFFE ID to requests that carry no meshguard.* context extensions:
	// from proxies meshguard's control plane does not configure, such as
	// Istio's with CUSTOM authorization (docs/istio.md).
	Destinations []Destination `yaml:"destinations"`
}

// RevocationConfig configures the revocation list.
type RevocationConfig struct {
	// DefaultTTL is how long a session or subject revocation lasts when it
	// does not say (default 24h: set it to your longest token lifetime).
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// Resync reloads the whole list this often (default 30s).
	Resync time.Duration `yaml:"resync"`
}

// JWTConfig configures end-user token verification.
type JWTConfig struct {
	// Required makes a request without a bearer token a 401 instead of an
	// anonymous (or workload) principal.
	Required      bool                 `yaml:"required"`
	Leeway        time.Duration        `yaml:"leeway"`
	MaxTokenBytes int                  `yaml:"max_token_bytes"`
	CacheSize     int                  `yaml:"cache_size"`
	Providers     []jwt.ProviderConfig `yaml:"providers"`
}

// ResponseConfig shapes what an allowed request carries upstream.
type ResponseConfig struct {
	PrincipalHeader     string            `yaml:"principal_header"`
	ClaimHeaders        map[string]string `yaml:"claim_headers"`
	RemoveAuthorization bool              `yaml:"remove_authorization"`
}

// DecisionLogConfig configures the JSON-lines decision log.
type DecisionLogConfig struct {
	// Path is a file, "-" for standard output, or "" (the default) for off.
	Path   string `yaml:"path"`
	Buffer int    `yaml:"buffer"`
	// RecordRequest adds the Cedar request each decision evaluated
	// (principal entity, action, resource, full context), for
	// `meshguard policy replay`. It holds what policies can see — the
	// allow-listed headers, the token's claims, the query — never a
	// token, a cookie or another header.
	RecordRequest bool `yaml:"record_request"`
	// HashChain writes the log as a hash chain: each line carries the
	// SHA-256 of the line before ("prev"); restarts and rotations continue
	// it (`meshguard audit verify`).
	HashChain bool `yaml:"hash_chain"`
	// MaxSizeMB rotates the file once it holds this many MiB: path
	// becomes path.1, path.1 path.2, … (0, the default: never).
	MaxSizeMB int `yaml:"max_size_mb"`
	// MaxBackups is how many rotated files are kept (default 5).
	MaxBackups int `yaml:"max_backups"`
}

// TracingConfig configures OpenTelemetry tracing (off by default).
type TracingConfig struct {
	Exporter    string  `yaml:"exporter"` // none | otlp | stdout
	Endpoint    string  `yaml:"endpoint"` // otlp gRPC endpoint, host:port
	Insecure    bool    `yaml:"insecure"`
	SampleRatio float64 `yaml:"sample_ratio"`
}

// Defaults.
const (
	DefaultListen          = "127.0.0.1:9191"
	DefaultAdminListen     = "127.0.0.1:9192"
	DefaultDecisionTimeout = 200 * time.Millisecond
	DefaultMaxRequestBytes = 1 << 20
	DefaultPrincipalHeader = "x-meshguard-principal"
	DefaultDecisionBuffer  = 4096
	DefaultDecisionBackups = 5
	// DefaultDecisionCacheSize results take at most 8 MiB (1 KiB keys).
	DefaultDecisionCacheSize = 8192
)

// DefaultRequestHeaders are exposed to policies when request_headers is unset.
var DefaultRequestHeaders = []string{"accept", "content-type", "user-agent", "x-request-id"}

// Schema is the schema policies are type-checked against: SchemaFile, or
// the built-in schema with this configuration's request headers.
func (c *Config) Schema() (*schema.Checker, error) {
	if c.SchemaFile != "" {
		return schema.Load(c.SchemaFile)
	}
	return schema.Builtin(schema.Options{Headers: c.RequestHeaders}), nil
}

// secretHeaders are never exposed to policies or logs: they carry credentials.
var secretHeaders = []string{"authorization", "cookie", "proxy-authorization", "set-cookie", "x-forwarded-client-cert"}

// LoadConfig reads, defaults and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	var c Config
	if err := yamlfile.Load(path, &c); err != nil {
		return nil, err
	}
	c.resolvePaths(filepath.Dir(path))
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) resolvePaths(base string) {
	abs := func(p string) string {
		if p == "" || p == "-" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	c.Policies = abs(c.Policies)
	c.Entities = abs(c.Entities)
	c.SchemaFile = abs(c.SchemaFile)
	c.AdminTokenFile = abs(c.AdminTokenFile)
	if c.Redis != nil {
		c.Redis.PasswordFile, c.Redis.SentinelPasswordFile = abs(c.Redis.PasswordFile), abs(c.Redis.SentinelPasswordFile)
		if t := c.Redis.TLS; t != nil {
			t.CAFile, t.CertFile, t.KeyFile = abs(t.CAFile), abs(t.CertFile), abs(t.KeyFile)
		}
	}
	c.DecisionLog.Path = abs(c.DecisionLog.Path)
	for i := range c.JWT.Providers {
		c.JWT.Providers[i].JWKSFile = abs(c.JWT.Providers[i].JWKSFile)
	}
	if c.TLS != nil {
		c.TLS.CertFile, c.TLS.KeyFile, c.TLS.BundleFile = abs(c.TLS.CertFile), abs(c.TLS.KeyFile), abs(c.TLS.BundleFile)
	}
	if c.JWTSVID != nil {
		for td, p := range c.JWTSVID.Bundles {
			c.JWTSVID.Bundles[td] = abs(p)
		}
	}
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if c.DecisionTimeout == 0 {
		c.DecisionTimeout = DefaultDecisionTimeout
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.DecisionCacheSize == 0 {
		c.DecisionCacheSize = DefaultDecisionCacheSize
	}
	if c.RequestHeaders == nil {
		c.RequestHeaders = DefaultRequestHeaders
	}
	for i, h := range c.RequestHeaders {
		c.RequestHeaders[i] = strings.ToLower(h)
	}
	if c.JWT.Leeway == 0 {
		c.JWT.Leeway = jwt.DefaultLeeway
	}
	if c.JWT.MaxTokenBytes == 0 {
		c.JWT.MaxTokenBytes = jwt.DefaultMaxTokenBytes
	}
	if c.JWT.CacheSize == 0 {
		c.JWT.CacheSize = jwt.DefaultCacheSize
	}
	if c.Response.PrincipalHeader == "" {
		c.Response.PrincipalHeader = DefaultPrincipalHeader
	}
	c.Response.PrincipalHeader = strings.ToLower(c.Response.PrincipalHeader)
	for k, h := range c.Response.ClaimHeaders {
		c.Response.ClaimHeaders[k] = strings.ToLower(h)
	}
	if c.DecisionLog.Buffer == 0 {
		c.DecisionLog.Buffer = DefaultDecisionBuffer
	}
	if c.DecisionLog.MaxSizeMB > 0 && c.DecisionLog.MaxBackups == 0 {
		c.DecisionLog.MaxBackups = DefaultDecisionBackups
	}
	if c.Tracing.Exporter == "" {
		c.Tracing.Exporter = "none"
	}
	if c.Tracing.SampleRatio == 0 {
		c.Tracing.SampleRatio = 1
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = "text"
	}
	if c.Redis != nil {
		c.Redis.ApplyDefaults()
	}
	if c.Revocation.DefaultTTL == 0 {
		c.Revocation.DefaultTTL = 24 * time.Hour
	}
	if c.Revocation.Resync == 0 {
		c.Revocation.Resync = 30 * time.Second
	}
}

// Validate checks the configuration; each error names its key.
func (c *Config) Validate() error {
	var errs []error
	add := func(key string, err error) { errs = append(errs, fmt.Errorf("%s: %w", key, err)) }
	for key, addr := range map[string]string{"listen": c.Listen, "admin_listen": c.AdminListen, "http_listen": c.HTTPListen} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			add(key, fmt.Errorf("%q is not host:port", addr))
		}
	}
	if c.HTTPPathPrefix != "" && !strings.HasPrefix(c.HTTPPathPrefix, "/") {
		add("http_path_prefix", errors.New("must start with '/'"))
	}
	if c.Policies == "" {
		add("policies", errors.New("required: a directory of *.cedar files"))
	}
	if c.DecisionTimeout < 0 {
		add("decision_timeout", errors.New("must not be negative"))
	}
	if c.MaxRequestBytes < 4096 {
		add("max_request_bytes", errors.New("must be at least 4096"))
	}
	if c.DecisionCacheSize > 1<<20 {
		add("decision_cache_size", errors.New("must be at most 1048576 (negative disables the cache)"))
	}
	if c.SchemaFile != "" {
		if _, err := schema.Load(c.SchemaFile); err != nil {
			add("schema_file", err)
		}
	}
	if c.Redis != nil {
		if err := c.Redis.Validate("redis"); err != nil {
			errs = append(errs, err)
		}
	}
	for i, p := range c.JWT.Providers {
		if p.Revocation != nil && c.Redis == nil {
			add(fmt.Sprintf("jwt.providers[%d].revocation", i), errors.New("needs the redis block: the revocation list lives in Redis"))
		}
	}
	if c.Revocation.DefaultTTL < 0 || c.Revocation.DefaultTTL > 366*24*time.Hour {
		add("revocation.default_ttl", errors.New("must be between 0 and 366 days"))
	}
	if c.Revocation.Resync < 0 {
		add("revocation.resync", errors.New("must not be negative"))
	}
	for _, h := range c.RequestHeaders {
		if slices.Contains(secretHeaders, h) {
			add("request_headers", fmt.Errorf("%q carries credentials and is never exposed to policies", h))
		}
	}
	if c.JWT.Leeway < 0 || c.JWT.Leeway > 5*time.Minute {
		add("jwt.leeway", errors.New("must be between 0 and 5m"))
	}
	if c.JWT.MaxTokenBytes < 256 || c.JWT.MaxTokenBytes > 64<<10 {
		add("jwt.max_token_bytes", errors.New("must be between 256 and 65536"))
	}
	if c.JWT.Required && len(c.JWT.Providers) == 0 {
		add("jwt.required", errors.New("needs at least one provider"))
	}
	if err := validHeaderName(c.Response.PrincipalHeader); err != nil {
		add("response.principal_header", err)
	}
	for claim, h := range c.Response.ClaimHeaders {
		if claim == "" {
			add("response.claim_headers", errors.New("empty claim name"))
		}
		if err := validHeaderName(h); err != nil {
			add("response.claim_headers."+claim, err)
		}
	}
	if err := validateDestinations(c.Destinations); err != nil {
		add("destinations", err)
	}
	if c.DecisionLog.Buffer < 1 || c.DecisionLog.Buffer > 1<<20 {
		add("decision_log.buffer", errors.New("must be between 1 and 1048576"))
	}
	if c.DecisionLog.MaxSizeMB < 0 || c.DecisionLog.MaxBackups < 0 || c.DecisionLog.MaxBackups > 1000 {
		add("decision_log", errors.New("max_size_mb must be ≥ 0 and max_backups between 0 and 1000"))
	}
	if c.DecisionLog.MaxSizeMB > 0 && c.DecisionLog.Path == "-" {
		add("decision_log.max_size_mb", errors.New("standard output cannot be rotated"))
	}
	switch c.Tracing.Exporter {
	case "none", "stdout":
	case "otlp":
		if c.Tracing.Endpoint == "" {
			add("tracing.endpoint", errors.New("required with exporter otlp"))
		}
	default:
		add("tracing.exporter", fmt.Errorf("%q: want none, otlp or stdout", c.Tracing.Exporter))
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		add("tracing.sample_ratio", errors.New("must be between 0 and 1"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log_level", fmt.Errorf("%q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		add("log_format", fmt.Errorf("%q: want text or json", c.LogFormat))
	}
	for i, p := range c.JWT.Providers {
		if err := p.Validate(); err != nil {
			add(fmt.Sprintf("jwt.providers[%d]", i), err)
		}
	}
	if c.TLS != nil {
		if err := c.TLS.Validate(); err != nil {
			add("tls", err)
		}
	}
	if c.JWTSVID != nil {
		if err := c.JWTSVID.Validate(); err != nil {
			add("jwt_svid", err)
		}
	}
	return errors.Join(errs...)
}

func validHeaderName(h string) error {
	if !httpguts.ValidHeaderFieldName(h) {
		return fmt.Errorf("%q is not a valid header name", h)
	}
	if slices.Contains(secretHeaders, h) || h == "host" {
		return fmt.Errorf("%q may not be set by the authorizer", h)
	}
	return nil
}
