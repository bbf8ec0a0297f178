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
	watcher  *filewatch.Watcher
}

func newFileSource(provider, path string, log *slog.Logger) (*fileSource, error) {
	s := &fileSource{path: path, provider: provider, log: log}
	// Watch before the first read, so no change between the two is missed.
	w, err := filewatch.New([]string{filepath.Dir(path)}, false)
	if err != nil {
		log.Error("JWKS file not watched; changes need a restart", "provider", provider, "err", err)
	}
	s.watcher = w
	if err := s.load(); err != nil {
		if w != nil {
			w.Close()
		}
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
	if s.watcher == nil {
		return
	}
	s.watcher.Run(ctx, func() {
		if err := s.load(); err != nil {
			s.log.Error("JWKS file not reloaded; keeping last good keys", "provider", s.provider, "err", err)
			return
		}
		s.log.Info("JWKS file reloaded", "provider", s.provider, "keys", s.cur.Load().Len())
	})
}

// remoteSource fetches a JWKS over HTTPS, refreshes it periodically, and
// refetches (rate limited) when a token names an unknown kid. With no URL it
// first discovers one from the issuer's OpenID configuration.
//
// Fetches are single-flight and detached from the request that triggered
// them: waiters give up when their own context ends, while the fetch runs to
// its FetchTimeout so the next request benefits from it.
type remoteSource struct {
	keyHolder
	cfg    ProviderConfig
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	base   context.Context // parent of fetches; cancelled when the verifier stops

	mu          sync.Mutex
	jwksURI     string
	lastAttempt time.Time
	lastErr     error
	inflight    chan struct{} // closed when the running fetch ends; nil when idle
}

func newRemoteSource(cfg ProviderConfig, client *http.Client, log *slog.Logger) *remoteSource {
	return &remoteSource{cfg: cfg, client: client, log: log, jwksURI: cfg.JWKSURI, now: time.Now, base: context.Background()}
}

// Refetch triggers a fetch unless one was attempted within
// MinRefetchInterval, and waits for the running fetch or ctx.
func (s *remoteSource) Refetch(ctx context.Context) {
	if done := s.trigger(true); done != nil {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
}

// fetch triggers a fetch (not rate limited) and waits for it.
func (s *remoteSource) fetch(ctx context.Context) {
	select {
	case <-s.trigger(false):
	case <-ctx.Done():
	}
}

// trigger starts a fetch, or joins the running one. With rateLimited it
// returns nil when the last attempt is too recent.
func (s *remoteSource) trigger(rateLimited bool) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != nil {
		return s.inflight
	}
	if rateLimited && !s.lastAttempt.IsZero() && s.now().Sub(s.lastAttempt) < s.cfg.MinRefetchInterval {
		return nil
	}
	s.lastAttempt = s.now()
	done := make(chan struct{})
	s.inflight = done
	uri, base := s.jwksURI, s.base
	go func() {
		ctx, cancel := context.WithTimeout(base, s.cfg.FetchTimeout)
		defer cancel()
		uri, err := s.doFetch(ctx, uri)
		if err != nil {
			s.log.Error("JWKS fetch failed; keeping last good keys", "provider", s.cfg.Name, "err", err)
		}
		s.mu.Lock()
		s.jwksURI, s.lastErr, s.inflight = uri, err, nil
		s.mu.Unlock()
		close(done)
	}()
	return done
}

func (s *remoteSource) doFetch(ctx context.Context, uri string) (string, error) {
	if uri == "" {
		var err error
		if uri, err = s.discover(ctx); err != nil {
			return "", err
		}
	}
	data, err := s.get(ctx, uri)
	if err != nil {
		return uri, err
	}
	ks, err := ParseKeySet(data)
	if err != nil {
		return uri, fmt.Errorf("%s: %w", uri, err)
	}
	s.set(ks)
	return uri, nil
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
			s.fetch(ctx)
		}
	}
}

func (s *remoteSource) lastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

var errNoKeys = errors.New("no keys loaded yet")
