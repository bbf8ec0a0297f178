package controlplane

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// statusCP starts a control plane on the sidecars mesh whose rollout gates
// (and status page) read the given authorizers.
func statusCP(t *testing.T, mesh string, authorizers ...string) *Server {
	t.Helper()
	return serve(t, Config{MeshPath: mesh, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", CADir: filepath.Join(t.TempDir(), "ca"),
		InsecureLoopbackSecrets: true, AuthzAdmin: authorizers})
}

func getPage(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// What an authorizer reports is request data: the page escapes it, and
// forbids scripts and remote content outright.
func TestTheStatusPageEscapesWhatAuthorizersReport(t *testing.T) {
	authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/denies" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"denies": [{"time": "2026-12-06T10:00:00Z", "status": 403, "reason": "policy_denied",
			"route": "orders/write", "principal": "User::\"<b>mallory</b>\"", "method": "POST", "path": "/orders/<script>alert(1)</script>"}]}`)
	}))
	defer authz.Close()
	s := statusCP(t, testMesh(t), authz.URL, "127.0.0.1:1")
	resp, body := getPage(t, "http://"+s.AdminAddr()+"/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("content-type"), "text/html") {
		t.Fatalf("GET /: %s %s", resp.Status, resp.Header.Get("content-type"))
	}
	if csp := resp.Header.Get("content-security-policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Fatalf("CSP %q", csp)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>mallory") {
		t.Fatal("request data reached the page unescaped")
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "policy_denied", "not reachable: 127.0.0.1:1",
		`mesh <strong id="mesh">quickstart</strong>`, "0 connected"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, ref := range []string{"src=", "href=", "<script", "<link", "url(", "@import"} {
		if strings.Contains(body, ref) {
			t.Errorf("the page loads something (%s)", ref)
		}
	}
	if resp, _ := getPage(t, "http://"+s.AdminAddr()+"/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %s", resp.Status)
	}
}
