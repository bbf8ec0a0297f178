package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshguard/meshguard/internal/filewatch"
)

// MaxFileBytes bounds one configuration file.
const MaxFileBytes = 4 << 20

// Load reads a configuration file, or every *.yaml and *.yml file of a
// directory (names starting with "." are skipped, as Kubernetes ConfigMap
// mounts need). Every file must load: a broken one fails the whole load.
func Load(path string) (*Config, error) {
	files, err := configFiles(path)
	if err != nil {
		return nil, err
	}
	var domains []*Domain
	var errs []error
	for _, f := range files {
		d, err := loadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		domains = append(domains, d)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return NewConfig(domains...)
}

func configFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("rate-limit configuration: %w", err)
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("rate-limit configuration: %w", err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		p := filepath.Join(path, n)
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			continue
		}
		files = append(files, p)
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("rate-limit configuration: no *.yaml file in %s", path)
	}
	return files, nil
}

func loadFile(p string) (*Domain, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, MaxFileBytes)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return ParseFile(p, data)
}

// Watch reloads the configuration at path into s whenever a file under it
// changes, until ctx ends. A load that fails changes nothing: the last
// good configuration keeps serving, and the error is logged and counted.
func (s *Service) Watch(ctx context.Context, path string) error {
	dir := path
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		dir = filepath.Dir(path)
	}
	return filewatch.Watch(ctx, []string{dir}, false, func() { s.Reload(path) })
}

// Reload loads path and, if it loads, serves it.
func (s *Service) Reload(path string) error {
	c, err := Load(path)
	if err != nil {
		s.o.Metrics.reloaded(false)
		s.o.Log.Error("rate-limit configuration not reloaded; keeping the last good one", "path", path, "err", err)
		s.lastErr.Store(&errHolder{err})
		return err
	}
	s.SetConfig(c)
	s.lastErr.Store(&errHolder{})
	s.o.Metrics.reloaded(true)
	s.o.Log.Info("rate-limit configuration loaded", "path", path, "domains", len(c.domains))
	return nil
}

type errHolder struct{ err error }

// LastError is why the last reload failed, or nil.
func (s *Service) LastError() error {
	if h := s.lastErr.Load(); h != nil {
		return h.err
	}
	return nil
}
