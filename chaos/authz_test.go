//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshguard/meshguard/internal/contract"
	"github.com/meshguard/meshguard/internal/demoidp"
	"github.com/meshguard/meshguard/internal/redistest"
)

const ordersPolicy = `@id("users-read")
permit (principal is User, action == Action::"GET", resource == Service::"orders");
`

// jwksServer serves an issuer's keys, and can go down (503) or publish more.
type jwksServer struct {
	mu   sync.Mutex
	keys [][]byte
	down bool
	srv  *http.Server
	addr string
}

func newJWKS(t *testing.T, first *demoidp.Issuer) *jwksServer {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	j := &jwksServer{addr: lis.Addr().String()}
	j.publish(t, first)
	j.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		for _, k := range j.keys {
			var one struct {
				Keys []json.RawMessage `json:"keys"`
			}
			_ = json.Unmarshal(k, &one)
			set.Keys = append(set.Keys, one.Keys...)
		}
		_ = json.NewEncoder(w).Encode(set)
	})}
	go func() { _ = j.srv.Serve(lis) }()
	t.Cleanup(func() { j.srv.Close() })
	return j
}

func (j *jwksServer) publish(t *testing.T, iss *demoidp.Issuer) {
	b, err := iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	j.mu.Lock()
	j.keys = append(j.keys, b)
	j.mu.Unlock()
}

func (j *jwksServer) setDown(down bool) { j.mu.Lock(); j.down = down; j.mu.Unlock() }

// Request classes of the load. The first three must never be allowed.
const (
	anonymousWrite = iota // no token, POST: no policy permits it
	forged                // signed by a key the issuer never published
	revoked               // a valid token whose jti was revoked
	good                  // a valid token, GET
	rotated               // signed by the issuer's second key, published after the JWKS outage
	classes
)

var classNames = [classes]string{"anonymous write", "forged token", "revoked token", "good token", "rotated key"}

type tally struct {
	mu     sync.Mutex
	phase  string
	phases []string
	counts map[string]*[classes][2]int64 // phase → class → [allowed, denied]
}

func (ta *tally) setPhase(p string) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.phase = p
	if _, ok := ta.counts[p]; !ok {
		ta.counts[p] = &[classes][2]int64{}
		ta.phases = append(ta.phases, p)
	}
}

func (ta *tally) add(class int, allowed bool) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	i := 1
	if allowed {
		i = 0
	}
	ta.counts[ta.phase][class][i]++
}

func (ta *tally) get(phase string, class int) (allowed, denied int64) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	c := ta.counts[phase]
	if c == nil {
		return 0, 0
	}
	return c[class][0], c[class][1]
}

func (ta *tally) print(t *testing.T) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s", "phase")
	for _, n := range classNames {
		fmt.Fprintf(&b, " %22s", n+" ok/denied")
	}
	for _, p := range ta.phases {
		fmt.Fprintf(&b, "\n%-16s", p)
		for c := range classes {
			fmt.Fprintf(&b, " %22s", fmt.Sprintf("%d/%d", ta.counts[p][c][0], ta.counts[p][c][1]))
		}
	}
	t.Logf("requests by phase:\n%s", b.String())
}

// The authorizer under load while its policy is corrupted, its JWKS
// endpoint is down, Redis (the revocation list) is lost and its decision
// log's disk is full: no forged, revoked or unpermitted request is ever
// allowed, valid tokens keep working wherever the design says they can,
// it never crashes, and it recovers by itself.
func TestAuthorizerUnderChaos(t *testing.T) {
	dir := t.TempDir()
	issA, _ := demoidp.Generate("key-a")
	issB, _ := demoidp.Generate("key-b")
	attacker, _ := demoidp.Generate("key-a") // same kid, another key
	jwks := newJWKS(t, issA)
	redis := redistest.Start(t)
	grpcAddr, adminAddr := freeAddr(t), freeAddr(t)
	write(t, filepath.Join(dir, "policies", "orders", "read.cedar"), ordersPolicy)
	write(t, filepath.Join(dir, "authz.yaml"), fmt.Sprintf(`listen: %s
admin_listen: %s
policies: ./policies
decision_timeout: 300ms
jwt:
  providers:
    - name: corp
      issuer: https://idp.chaos.example
      audiences: [chaos]
      jwks_uri: http://%s/jwks
      refresh_interval: 2s
      min_refetch_interval: 1s
      fetch_timeout: 500ms
      revocation: {on_unavailable: deny}
redis: {addrs: [%s]}
revocation: {resync: 2s}
decision_log: {path: ./decisions.jsonl}
log_level: warn
`, grpcAddr, adminAddr, jwks.addr, redis.Addr()))
	// A full disk: the decision log may not grow past ~128 KiB.
	authz := &proc{t: t, name: "authz", args: []string{"authz", "--config", filepath.Join(dir, "authz.yaml")}, shell: "ulimit -f 256"}
	authz.start()
	t.Cleanup(authz.kill)
	waitHTTP(t, "http://"+adminAddr+"/readyz", 20*time.Second)

	mint := func(iss *demoidp.Issuer, jti string) string {
		c := demoidp.Claims("https://idp.chaos.example", "alice", []string{"chaos"}, nil, time.Hour)
		c["jti"] = jti
		tok, err := iss.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tokens := map[int]string{forged: mint(attacker, "f-1"), revoked: mint(issA, "r-1"), good: mint(issA, "g-1"), rotated: mint(issB, "b-1")}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := authv3.NewAuthorizationClient(conn)
	check := func(class int) bool {
		method := "GET"
		hdrs := map[string]string{}
		if class == anonymousWrite {
			method = "POST"
		} else {
			hdrs["authorization"] = "Bearer " + tokens[class]
		}
		hdrs[":method"], hdrs[":path"] = method, "/orders/1"
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request:           &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: method, Path: "/orders/1", Headers: hdrs}},
			ContextExtensions: map[string]string{contract.ExtService: "orders", contract.ExtPolicy: "orders", contract.ExtRoute: "orders/read"},
		}})
		return err == nil && resp.GetStatus().GetCode() == 0
	}

	// Revoke r-1 before the load starts, and see it take effect.
	resp, err := http.Post("http://"+adminAddr+"/v1/revocations", "application/json", strings.NewReader(`{"jti": "r-1", "reason": "chaos"}`))
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for check(revoked) {
		if time.Now().After(deadline) {
			t.Fatal("the revoked token is still allowed after 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	ta := &tally{counts: map[string]*[classes][2]int64{}}
	ta.setPhase("steady")
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; !stop.Load(); i++ {
				c := i % classes
				ta.add(c, check(c))
			}
		})
	}
	phase := func(name string, d time.Duration, during func()) {
		ta.setPhase(name)
		if during != nil {
			during()
		}
		time.Sleep(d)
		authz.alive()
	}
	policy := filepath.Join(dir, "policies", "orders", "read.cedar")
	phase("steady", 2*time.Second, nil)
	phase("policy corrupt", 3*time.Second, func() { write(t, policy, "permit (principal, action, resource) when { ") })
	write(t, policy, ordersPolicy)
	phase("jwks down", 4*time.Second, func() { jwks.setDown(true) })
	jwks.publish(t, issB)
	jwks.setDown(false)
	phase("redis lost", 4*time.Second, func() { redis.Kill() })
	redis.Start()
	phase("recovering", 6*time.Second, nil)
	phase("recovered", 3*time.Second, nil)
	stop.Store(true)
	wg.Wait()
	ta.print(t)

	// Never wrongly allowed, in any phase.
	for _, p := range ta.phases {
		for _, c := range []int{anonymousWrite, forged, revoked} {
			if allowed, _ := ta.get(p, c); allowed > 0 {
				t.Errorf("%s: %d %s requests allowed", p, allowed, classNames[c])
			}
		}
	}
	// A corrupt policy edit changes nothing (the last good set stays); a
	// JWKS outage does not stop tokens of keys already known.
	for _, p := range []string{"steady", "policy corrupt", "jwks down"} {
		if ok, denied := ta.get(p, good); denied > 0 || ok == 0 {
			t.Errorf("%s: good tokens %d allowed, %d denied; want all allowed", p, ok, denied)
		}
	}
	// Redis lost: the list cannot be trusted and tokens are denied
	// (on_unavailable: deny) — then it recovers by itself.
	if _, denied := ta.get("redis lost", good); denied == 0 {
		t.Error("redis lost: no good token was denied; the provider says on_unavailable: deny")
	}
	for _, c := range []int{good, rotated} {
		if ok, denied := ta.get("recovered", c); denied > 0 || ok == 0 {
			t.Errorf("recovered: %s %d allowed, %d denied; want all allowed", classNames[c], ok, denied)
		}
	}
	// The full disk lost log lines, counted, and nothing else.
	if dropped := metric(t, adminAddr, "meshguard_authz_decision_log_dropped_total"); dropped == 0 {
		t.Error("the decision log's disk was full but no entry was counted as dropped")
	} else {
		t.Logf("decision log entries dropped on the full disk: %.0f", dropped)
	}
	if fi, err := os.Stat(filepath.Join(dir, "decisions.jsonl")); err != nil || fi.Size() > 256*1024 {
		t.Errorf("decision log: %v (size %d)", err, fi.Size())
	}
	authz.alive()
	t.Logf("authz RSS %d KiB", authz.rssKiB())
}

func freeAddr(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}
