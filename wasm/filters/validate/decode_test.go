package validate

import (
	"net/url"
	"strings"
	"testing"
)

func splitDecoded(t *testing.T, p string) []string {
	t.Helper()
	path, _, _ := strings.Cut(p, "?")
	d, err := url.PathUnescape(path)
	if err != nil {
		return nil
	}
	// A second decoding round, as a lenient backend might apply.
	if d2, err := url.PathUnescape(d); err == nil {
		d = d2
	}
	return strings.Split(strings.ReplaceAll(d, "\\", "/"), "/")
}
