package jwt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshguard/meshguard/internal/filewatch"
)

// MaxJWKSSize bounds a JWKS or discovery document.
const MaxJWKSSize = 1 << 20

// keySource supplies a provider's current keys.
type keySource interface {
	// Keys returns the current key set and its generation; nil before the first load.
	Keys() (*KeySet, uint64)
	// Refetch asks for fresh keys after an unknown kid. It is rate limited and
	// returns once a fetch (if one was allowed) completed or ctx is done.
	Refetch(ctx context.Context)
	// Run keeps the keys fresh until ctx is done.
	Run(ctx context.Context)
}

type keyHolder struct {
	cur atomic.Pointer[KeySet]
	gen atomic.Uint64
}

func (h *keyHolder) Keys() (*KeySet, uint64) { return h.cur.Load(), h.gen.Load() }

func (h *keyHolder) set(ks *KeySet) {
	h.cur.Store(ks)
	h.gen.Add(1)
}

// fileSource reads a JWKS file and reloads it when it changes.
type fileSource struct {
	keyHolder
	path     string
	provider string
	log      *slog.Logger
}

func newFileSource(provider, path string, log *slog.Logger) (*fileSource, error) {
	s := &fileSource{path: path, provider: provider, log: log}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *fileSource) load() error {
	data, err := readLimited(s.path)
	if err != nil {
		return err
	}
	ks, err := ParseKeySet(data)
	if err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	s.set(ks)
	return nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("%s: over the %d byte limit", path, MaxJWKSSize)
	}
	return data, nil
}

func (s *fileSource) Refetch(context.Context) {}

func (s *fileSource) Run(ctx context.Context) {
	err := filewatch.Watch(ctx, []string{filepath.Dir(s.path)}, false, func() {
		if err := s.load(); err != nil {
			s.log.Error("JWKS file not reloaded; keeping last good keys", "provider", s.provider, "err", err)
			return
		}
		s.log.Info("JWKS file reloaded", "provider", s.provider, "keys", s.cur.Load().Len())
	})
	if err != nil {
		s.log.Error("JWKS file not watched; changes need a restart", "provider", s.provider, "err", err)
	}
}

// remoteSource fetches a JWKS over HTTPS, refreshes it periodically, and
// refetches (rate limited) when a token names an unknown kid. With no URL it
// first discovers one from the issuer's OpenID configuration.
type remoteSource struct {
	keyHolder
	cfg    ProviderConfig
	client *http.Client
	log    *slog.Logger
	now    func() time.Time

	mu          sync.Mutex // one fetch at a time
	jwksURI     string
	lastAttempt time.Time
	lastErr     error
}

func newRemoteSource(cfg ProviderConfig, client *http.Client, log *slog.Logger) *remoteSource {
	return &remoteSource{cfg: cfg, client: client, log: log, jwksURI: cfg.JWKSURI, now: time.Now}
}

// Refetch fetches unless one was attempted within MinRefetchInterval.
func (s *remoteSource) Refetch(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastAttempt.IsZero() && s.now().Sub(s.lastAttempt) < s.cfg.MinRefetchInterval {
		return
	}
	s.fetchLocked(ctx)
}

func (s *remoteSource) fetch(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetchLocked(ctx)
}

func (s *remoteSource) fetchLocked(ctx context.Context) error {
	s.lastAttempt = s.now()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FetchTimeout)
	defer cancel()
	err := s.doFetch(ctx)
	s.lastErr = err
	if err != nil {
		s.log.Error("JWKS fetch failed; keeping last good keys", "provider", s.cfg.Name, "err", err)
	}
	return err
}

func (s *remoteSource) doFetch(ctx context.Context) error {
	if s.jwksURI == "" {
		uri, err := s.discover(ctx)
		if err != nil {
			return err
		}
		s.jwksURI = uri
	}
	data, err := s.get(ctx, s.jwksURI)
	if err != nil {
		return err
	}
	ks, err := ParseKeySet(data)
	if err != nil {
		return fmt.Errorf("%s: %w", s.jwksURI, err)
	}
	s.set(ks)
	return nil
}

// discover reads the issuer's OpenID Provider metadata (OIDC Discovery §4).
// The document's issuer must equal the configured one (§4.3).
func (s *remoteSource) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(s.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	data, err := s.get(ctx, u)
	if err != nil {
		return "", fmt.Errorf("OIDC discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("OIDC discovery %s: %w", u, err)
	}
	if doc.Issuer != s.cfg.Issuer {
		return "", fmt.Errorf("OIDC discovery %s: issuer %q does not match the configured %q", u, doc.Issuer, s.cfg.Issuer)
	}
	if err := checkFetchURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("OIDC discovery %s: jwks_uri %w", u, err)
	}
	return doc.JWKSURI, nil
}

func (s *remoteSource) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("GET %s: body over the %d byte limit", url, MaxJWKSSize)
	}
	return data, nil
}

// Run fetches at RefreshInterval; after a failure it retries sooner (with
// MinRefetchInterval), so a transient outage at start does not leave the
// provider keyless for a whole interval.
func (s *remoteSource) Run(ctx context.Context) {
	for {
		wait := s.cfg.RefreshInterval
		if ks, _ := s.Keys(); ks == nil || s.lastError() != nil {
			wait = min(wait, max(s.cfg.MinRefetchInterval, time.Second))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			_ = s.fetch(ctx)
		}
	}
}

func (s *remoteSource) lastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

var errNoKeys = errors.New("no keys loaded yet")
