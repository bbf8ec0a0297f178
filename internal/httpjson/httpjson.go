// Package httpjson reads JSON documents meshguard's parts serve each other
// over their admin listeners (proxy status, rollout counts, denials,
// routes): GET, 200 or an error naming the URL, and a bounded body, since
// the peer may be broken or hostile.
package httpjson

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Get fetches url (a scheme-less "host:port/path" means http) and decodes
// at most limit bytes of its JSON body into v.
func Get(ctx context.Context, client *http.Client, url string, limit int64, v any) error {
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(v); err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	return nil
}

// Result is what one source answered: its value, or why it did not.
type Result[T any] struct {
	Source string
	Value  T
	Err    error
}

// FromEach asks every source at once (get per source, in parallel) and
// returns their results in the order of sources.
func FromEach[T any](ctx context.Context, sources []string, get func(ctx context.Context, source string) (T, error)) []Result[T] {
	out := make([]Result[T], len(sources))
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Go(func() {
			v, err := get(ctx, src)
			out[i] = Result[T]{Source: src, Value: v, Err: err}
		})
	}
	wg.Wait()
	return out
}
