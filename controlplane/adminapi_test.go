package controlplane

import (
	"net/http"
	"strings"
	"testing"
)

func post(t *testing.T, url, contentType, token, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", contentType)
	if token != "" {
		req.Header.Set("authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRolloutCommandsAreAuthenticated(t *testing.T) {
	e := newRolloutEnv(t, func(c *Config) { c.AdminToken = "s3cret-token" })
	url := e.adminURL + "/v1/rollouts/pause"
	body := `{"route": "orders/read", "actor": "ops"}`
	for _, c := range []struct {
		name, contentType, token, body string
		want                           int
	}{
		{"no token", "application/json", "", body, http.StatusUnauthorized},
		{"wrong token", "application/json", "s3cret-tokem", body, http.StatusUnauthorized},
		{"a prefix of the token", "application/json", "s3cret", body, http.StatusUnauthorized},
		{"not JSON (a form a web page could send)", "application/x-www-form-urlencoded", "s3cret-token", body, http.StatusUnsupportedMediaType},
		{"unknown field", "application/json", "s3cret-token", `{"route": "orders/read", "force": true}`, http.StatusBadRequest},
		{"no route", "application/json", "s3cret-token", `{}`, http.StatusBadRequest},
		{"unknown route", "application/json", "s3cret-token", `{"route": "nope"}`, http.StatusNotFound},
		{"unknown verb", "application/json", "s3cret-token", body, http.StatusBadRequest},
		{"the token", "application/json", "s3cret-token", body, http.StatusOK},
		{"twice", "application/json", "s3cret-token", body, http.StatusConflict},
	} {
		u := url
		if c.name == "unknown verb" {
			u = e.adminURL + "/v1/rollouts/delete"
		}
		if got := post(t, u, c.contentType, c.token, c.body); got != c.want {
			t.Errorf("%s: HTTP %d, want %d", c.name, got, c.want)
		}
	}
	if r := e.rollout(); r.Phase != "Paused" || !strings.HasPrefix(r.PausedBy, "operator:ops@127.0.0.1") {
		t.Fatalf("paused by %q (%s)", r.PausedBy, r.Phase)
	}
	// Reading needs no token.
	resp, err := http.Get(e.adminURL + "/v1/rollouts?route=orders/read")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/rollouts: %v %v", resp, err)
	}
	resp.Body.Close()
}

// Without a token, commands are only served on a loopback admin listener.
func TestCommandsOnANonLoopbackAdminNeedAToken(t *testing.T) {
	e := newRolloutEnv(t, func(c *Config) { c.AdminListen = "0.0.0.0:0" })
	port := e.cp.AdminAddr()[strings.LastIndexByte(e.cp.AdminAddr(), ':'):]
	if got := post(t, "http://127.0.0.1"+port+"/v1/rollouts/pause", "application/json", "", `{"route": "orders/read"}`); got != http.StatusForbidden {
		t.Fatalf("HTTP %d, want 403", got)
	}
}
