package httpjson

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write([]byte(`{"a": 1}`))
		case "/huge":
			_, _ = w.Write([]byte(`{"a": "` + strings.Repeat("x", 1000) + `"}`))
		default:
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	var v struct{ A int }
	if err := Get(context.Background(), srv.Client(), strings.TrimPrefix(srv.URL, "http://")+"/ok", 100, &v); err != nil || v.A != 1 {
		t.Fatalf("ok: %v %+v", err, v)
	}
	if err := Get(context.Background(), srv.Client(), srv.URL+"/down", 100, &v); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a 503: %v", err)
	}
	var w struct{ A string }
	if err := Get(context.Background(), srv.Client(), srv.URL+"/huge", 100, &w); err == nil {
		t.Fatal("a body over the limit decoded")
	}
}

// Every source is asked, each result stays with its source, in order.
func TestFromEachAsksEverySource(t *testing.T) {
	got := FromEach(context.Background(), []string{"a", "bad", "c"}, func(_ context.Context, src string) (string, error) {
		if src == "bad" {
			return "", errors.New("down")
		}
		return src + "!", nil
	})
	if len(got) != 3 || got[0].Value != "a!" || got[1].Err == nil || got[1].Source != "bad" || got[2].Value != "c!" {
		t.Fatalf("%+v", got)
	}
}
