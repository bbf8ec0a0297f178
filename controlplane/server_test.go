package controlplane

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	sotwclient "github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/identity/devca"
	"github.com/meshguard/meshguard/internal/peercred"
	"github.com/meshguard/meshguard/internal/poll"
	"github.com/meshguard/meshguard/internal/xds"
	"github.com/meshguard/meshguard/internal/xdstest"
)

// testMesh copies the quickstart mesh and policies into a temp dir.
func testMesh(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := "../examples/quickstart"
	data, err := os.ReadFile("testdata/sidecars/mesh.yaml")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "mesh.yaml"), strings.Replace(string(data), "../../../examples/quickstart/policies", "./policies", 1))
	for _, p := range []string{"policies/health.cedar", "policies/frontend/frontend.cedar", "policies/orders/read.cedar", "policies/orders/write.cedar", "policies/payments/payments.cedar"} {
		b, err := os.ReadFile(filepath.Join(src, p))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, p), string(b))
	}
	return filepath.Join(dir, "mesh.yaml")
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), old, new, 1)
	if s == string(b) {
		t.Fatalf("edit %q did not apply", old)
	}
	write(t, path, s)
}

func startCP(t *testing.T) (*Server, string, *grpc.ClientConn) {
	t.Helper()
	mesh := testMesh(t)
	// Secrets over plaintext loopback, as in the quickstart: these tests are
	// about what is served (TestSecretsGoOnlyToAProvenWorkload: to whom).
	s := serve(t, Config{MeshPath: mesh, Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0", CADir: filepath.Join(t.TempDir(), "ca"),
		InsecureLoopbackSecrets: true})
	conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return s, mesh, conn
}

// serve starts a control plane on cfg until the test ends.
func serve(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		s.Stop(stop)
		cancel()
	})
	return s
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 5*time.Second, what, cond)
}

func state(s *Server, node, typ string) xds.TypeStatus {
	for _, p := range s.Status().Proxies {
		if p.Node == node {
			return p.Types[typ]
		}
	}
	return xds.TypeStatus{}
}

func pushes(s *Server, typ string) float64 {
	m, _ := s.Registry.Gather()
	for _, f := range m {
		if f.GetName() == "meshguard_xds_pushes_total" {
			for _, mm := range f.GetMetric() {
				if mm.GetLabel()[0].GetValue() == typ {
					return mm.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func fetch(t *testing.T, c sotwclient.ADSClient) *sotwclient.Response {
	t.Helper()
	type res struct {
		r   *sotwclient.Response
		err error
	}
	ch := make(chan res, 1)
	go func() { r, err := c.Fetch(); ch <- res{r, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.r
	case <-time.After(5 * time.Second):
		t.Fatal("no xDS response within 5s")
	}
	return nil
}

func TestSotWAckAndContentVersions(t *testing.T) {
	s, mesh, conn := startCP(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node := &corev3.Node{Id: "orders-0", Cluster: "orders"}
	cds := sotwclient.NewADSClient(ctx, node, xds.ClusterType)
	if err := cds.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	r := fetch(t, cds)
	var names []string
	for _, a := range r.Resources {
		var c clusterv3.Cluster
		if err := a.UnmarshalTo(&c); err != nil {
			t.Fatal(err)
		}
		names = append(names, c.GetName())
	}
	if strings.Join(names, ",") != "inbound|local,meshguard-authz,outbound|payments" {
		t.Fatalf("clusters = %v", names)
	}
	if err := cds.Ack(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "CDS SYNCED", func() bool { return state(s, "orders-0", "Cluster").State == xds.Synced })
	if got := state(s, "orders-0", "Listener").State; got != xds.NotSent {
		t.Fatalf("LDS state = %s, want NOT SENT", got)
	}

	// A route change moves only the route configuration's version.
	before := s.Cache.Snapshot("orders-0")
	edit(t, mesh, "match: {prefix: /catalog, methods: [GET]}", "match: {prefix: /catalog, methods: [GET, HEAD]}")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	after := s.Cache.Snapshot("orders-0")
	if before[xds.RouteType].Version == after[xds.RouteType].Version {
		t.Fatal("route version unchanged after a route edit")
	}
	for _, typ := range []string{xds.ClusterType, xds.ListenerType, xds.EndpointType, xds.SecretType} {
		if before[typ].Version != after[typ].Version {
			t.Fatalf("%s version changed on a route-only edit", typ)
		}
	}
	if got := pushes(s, "Cluster"); got != 1 {
		t.Fatalf("CDS pushes = %v, want 1 (unchanged config is never re-pushed)", got)
	}
	if got := state(s, "orders-0", "Cluster").State; got != xds.Synced {
		t.Fatalf("CDS state after route edit = %s", got)
	}
}

func TestNackKeepsLastGoodAndDoesNotStorm(t *testing.T) {
	s, mesh, conn := startCP(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lds := sotwclient.NewADSClient(ctx, &corev3.Node{Id: "payments-0", Cluster: "payments"}, xds.ListenerType)
	if err := lds.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	fetch(t, lds)
	firstVersion := s.Cache.Snapshot("payments-0")[xds.ListenerType].Version
	if err := lds.Nack("listener inbound: invalid filter chain (test)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "LDS NACKED", func() bool { return state(s, "payments-0", "Listener").State == xds.Nacked })
	if st := state(s, "payments-0", "Listener"); !strings.Contains(st.Error, "invalid filter chain") || st.Acked != "" {
		t.Fatalf("status = %+v", st)
	}
	// Reapplying the same config must not resend the rejected version.
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	// A new listener version is sent exactly once.
	edit(t, mesh, "timeout: 250ms", "timeout: 300ms")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	fetch(t, lds)
	if st := state(s, "payments-0", "Listener"); st.Sent == firstVersion || st.Sent != s.Cache.Snapshot("payments-0")[xds.ListenerType].Version {
		t.Fatalf("after the edit the proxy was sent %s (rejected was %s)", st.Sent, firstVersion)
	}
	if err := lds.Ack(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "LDS SYNCED", func() bool { return state(s, "payments-0", "Listener").State == xds.Synced })
	if got := pushes(s, "Listener"); got != 2 {
		t.Fatalf("LDS responses = %v, want exactly 2 (no resend loop after the NACK)", got)
	}
	if got := testutil.ToFloat64(s.Tracker.Metrics().Nacks.WithLabelValues("Listener")); got != 1 {
		t.Fatalf("nack metric = %v", got)
	}
}

func TestDeltaSendsOnlyChanges(t *testing.T) {
	s, mesh, conn := startCP(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "frontend-0", Cluster: "frontend"}
	if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: xds.ClusterType}); err != nil {
		t.Fatal(err)
	}
	r1, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(r1.GetResources()) != 3 {
		t.Fatalf("first delta response has %d clusters, want 3", len(r1.GetResources()))
	}
	if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: xds.ClusterType, ResponseNonce: r1.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delta CDS SYNCED", func() bool { return state(s, "frontend-0", "Cluster").State == xds.Synced })

	// orders becomes gRPC: only frontend's outbound|orders cluster changes.
	edit(t, mesh, "    - name: orders\n      namespace: demo\n", "    - name: orders\n      namespace: demo\n      protocol: grpc\n")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	r2, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.GetResources()) != 1 || r2.GetResources()[0].GetName() != "outbound|orders" || len(r2.GetRemovedResources()) != 0 {
		t.Fatalf("delta response: %d resources (%v), removed %v", len(r2.GetResources()), r2.GetResources(), r2.GetRemovedResources())
	}
	if err := stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: xds.ClusterType, ResponseNonce: r2.GetNonce(),
		ErrorDetail: statusProto{Message: "rejected by test"}.proto()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "delta CDS NACKED", func() bool { return state(s, "frontend-0", "Cluster").State == xds.Nacked })

	// Removing the dependency removes the cluster.
	edit(t, mesh, "calls: [orders]", "calls: []")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	r3, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(r3.GetRemovedResources(), ",") != "outbound|orders" {
		t.Fatalf("removed = %v", r3.GetRemovedResources())
	}
}

func TestSecretsCarryTheWorkloadSVID(t *testing.T) {
	s, _, conn := startCP(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sds := sotwclient.NewADSClient(ctx, &corev3.Node{Id: "orders-0", Cluster: "orders"}, xds.SecretType)
	if err := sds.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	r := fetch(t, sds)
	if len(r.Resources) != 2 {
		t.Fatalf("%d secrets, want default and ROOTCA", len(r.Resources))
	}
	var leaf *x509.Certificate
	var err error
	for _, a := range r.Resources {
		var sec tlsv3.Secret
		if err := a.UnmarshalTo(&sec); err != nil {
			t.Fatal(err)
		}
		if sec.GetName() == "default" {
			b, _ := pem.Decode(sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
			if leaf, err = x509.ParseCertificate(b.Bytes); err != nil {
				t.Fatal(err)
			}
		}
		if sec.GetName() == "ROOTCA" && sec.GetValidationContext().GetCustomValidatorConfig().GetName() != "envoy.tls.cert_validator.spiffe" {
			t.Fatalf("ROOTCA is not a SPIFFE validator config: %v", sec.GetValidationContext())
		}
	}
	if leaf == nil || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://meshguard.local/ns/demo/sa/orders" {
		t.Fatalf("default secret is not orders' SVID: %v", leaf)
	}
	if err := sds.Ack(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "SDS SYNCED", func() bool { return state(s, "orders-0", "Secret").State == xds.Synced })
}

func TestBadMeshEditKeepsLastGood(t *testing.T) {
	s, mesh, _ := startCP(t)
	before := s.Cache.Snapshot("orders-0")
	edit(t, mesh, "calls: [payments]", "calls: [nowhere]")
	eventually(t, "reload error reported", func() bool {
		return s.LastError() != nil && strings.Contains(s.LastError().Error(), `no service "nowhere"`)
	})
	if after := s.Cache.Snapshot("orders-0"); after[xds.ClusterType].Version != before[xds.ClusterType].Version {
		t.Fatal("a bad edit changed the served config")
	}
	edit(t, mesh, "calls: [nowhere]", "calls: []")
	eventually(t, "good edit applied", func() bool {
		return s.LastError() == nil && len(s.Cache.Snapshot("orders-0")[xds.ClusterType].Resources) == 2
	})
}

// fetchSecrets opens an ADS stream as node on conn and asks for its
// secrets: the names it got, or the error that ended the stream.
func fetchSecrets(t *testing.T, conn *grpc.ClientConn, node string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sds := sotwclient.NewADSClient(ctx, &corev3.Node{Id: node, Cluster: "orders"}, xds.SecretType)
	if err := sds.InitConnect(conn); err != nil {
		t.Fatal(err)
	}
	r, err := sds.Fetch()
	if err != nil {
		return nil, err
	}
	return xdstest.Names(t, r, &tlsv3.Secret{}), nil
}

// A node's key goes only to a stream that proved it is the node's
// workload: on the Unix socket, a peer running as the workload's uid; over
// plaintext loopback, nobody — unless the quickstart's insecure setting
// says so.
func TestSecretsGoOnlyToAProvenWorkload(t *testing.T) {
	mesh := testMesh(t)
	me := os.Getuid()
	edit(t, mesh, "- name: orders-0\n", fmt.Sprintf("- name: orders-0\n          uid: %d\n", me))
	edit(t, mesh, "- name: payments-0\n", fmt.Sprintf("- name: payments-0\n          uid: %d\n", me+1))
	sock := filepath.Join(t.TempDir(), "xds.sock")
	start := func(insecureLoopback bool) *Server {
		return serve(t, Config{MeshPath: mesh, Listen: "127.0.0.1:0", Socket: sock, CADir: filepath.Join(filepath.Dir(mesh), "ca"),
			InsecureLoopbackSecrets: insecureLoopback})
	}
	dial := func(target string) *grpc.ClientConn {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	s := start(false)
	unix := dial("unix://" + s.SocketAddr())
	if names, err := fetchSecrets(t, unix, "orders-0"); err != nil || !slices.Contains(names, "default") {
		t.Fatalf("orders-0 over the socket as its uid: %v %v, want its SVID", names, err)
	}
	if _, err := fetchSecrets(t, unix, "payments-0"); err == nil {
		t.Fatal("payments-0's key went to a peer running as another uid")
	}
	if _, err := fetchSecrets(t, unix, "frontend-0"); err == nil {
		t.Fatal("frontend-0 (no uid in the mesh) got its key over the socket")
	}
	if _, err := fetchSecrets(t, dial(s.Addr()), "orders-0"); err == nil {
		t.Fatal("a plaintext loopback stream got orders-0's key by naming it")
	}
	s.Stop(context.Background())

	// The quickstart's setting: loopback peers are trusted.
	s = start(true)
	if names, err := fetchSecrets(t, dial(s.Addr()), "payments-0"); err != nil || !slices.Contains(names, "default") {
		t.Fatalf("with InsecureLoopbackSecrets: %v %v, want payments-0's SVID", names, err)
	}
}

// secretAccess is the rule itself, for peers a test cannot easily be.
func TestSecretAccessRefusesWhatProvesNothing(t *testing.T) {
	m, err := model.Parse([]byte(strings.Replace(mustRead(t, "testdata/sidecars/mesh.yaml"), "- name: orders-0\n", "- name: orders-0\n          uid: 1000\n", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	remote := &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.9"), Port: 5000}}
	loop := &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5000}}
	for _, tc := range []struct {
		name     string
		p        *peer.Peer
		node     string
		insecure bool
		want     bool
	}{
		{"no peer", nil, "orders-0", true, false},
		{"a remote plaintext peer, even with the insecure setting", remote, "orders-0", true, false},
		{"a loopback plaintext peer", loop, "orders-0", false, false},
		{"a loopback plaintext peer with the insecure setting", loop, "orders-0", true, true},
		{"a TLS peer without a certificate", &peer.Peer{AuthInfo: credentials.TLSInfo{}}, "orders-0", false, false},
		{"the workload's uid", &peer.Peer{AuthInfo: peercred.AuthInfo{UID: 1000}}, "orders-0", false, true},
		{"root is not the workload", &peer.Peer{AuthInfo: peercred.AuthInfo{UID: 0}}, "orders-0", false, false},
		{"a node the mesh does not have", &peer.Peer{AuthInfo: peercred.AuthInfo{UID: 1000}}, "nobody-0", true, false},
	} {
		if got := secretAccess(tc.p, m, tc.node, tc.insecure); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMTLSBindsSecretsToTheNodeIdentity(t *testing.T) {
	mesh := testMesh(t)
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	td := spiffeid.RequireTrustDomainFromString("meshguard.local")
	ca, err := devca.LoadOrCreate(caDir, td)
	if err != nil {
		t.Fatal(err)
	}
	cpSVID, _ := ca.Issue(spiffeid.RequireFromString("spiffe://meshguard.local/meshguard/controlplane"), time.Hour)
	for name, data := range map[string][]byte{"cert.pem": cpSVID.CertPEM, "key.pem": cpSVID.KeyPEM, "bundle.pem": ca.BundlePEM()} {
		write(t, filepath.Join(dir, name), string(data))
	}
	s, err := New(Config{MeshPath: mesh, Listen: "127.0.0.1:0", CADir: caDir, TLS: &identity.TLSConfig{
		CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), BundleFile: filepath.Join(dir, "bundle.pem"),
		Policy: identity.Policy{TrustDomains: []string{"meshguard.local"}},
	}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())

	fetchSecrets := func(as string) error {
		src, err := identity.NewDevCASource(ca, spiffeid.RequireFromString(as), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tlsConf := identity.ClientTLS(src, src, identity.Policy{IDs: []string{"spiffe://meshguard.local/meshguard/controlplane"}})
		conn, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(tlsConf)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c := sotwclient.NewADSClient(ctx, &corev3.Node{Id: "orders-0", Cluster: "orders"}, xds.SecretType)
		if err := c.InitConnect(conn); err != nil {
			return err
		}
		_, err = c.Fetch()
		return err
	}
	if err := fetchSecrets("spiffe://meshguard.local/ns/demo/sa/orders"); err != nil {
		t.Fatalf("orders' own identity could not fetch orders-0's secrets: %v", err)
	}
	if err := fetchSecrets("spiffe://meshguard.local/ns/demo/sa/payments"); err == nil {
		t.Fatal("payments' identity received orders-0's private key")
	}
}

func TestFederatedBundlesReachALL(t *testing.T) {
	mesh := testMesh(t)
	partner, err := devca.New(spiffeid.RequireTrustDomainFromString("partner.test"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(filepath.Dir(mesh), "partner.pem"), string(partner.BundlePEM()))
	edit(t, mesh, "  services:\n", "  federation:\n    - {trustDomain: partner.test, bundleFile: partner.pem}\n  services:\n")
	edit(t, mesh, "      calls: [payments]\n", "      calls: [payments]\n      externalCallers: [spiffe://partner.test/ns/billing/sa/exporter]\n")
	s, err := New(Config{MeshPath: mesh, Listen: "127.0.0.1:0", CADir: filepath.Join(t.TempDir(), "ca")}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ts := s.Cache.Snapshot("orders-0")[xds.SecretType]
	if ts == nil || ts.Resources["ALL"] == nil || ts.Resources["ROOTCA"] != nil {
		t.Fatalf("secrets = %v, want default and ALL", ts.Names())
	}
	var sec tlsv3.Secret
	if err := ts.Resources["ALL"].Any.UnmarshalTo(&sec); err != nil {
		t.Fatal(err)
	}
	var v tlsv3.SPIFFECertValidatorConfig
	if err := sec.GetValidationContext().GetCustomValidatorConfig().GetTypedConfig().UnmarshalTo(&v); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range v.GetTrustDomains() {
		names = append(names, d.GetName())
	}
	if strings.Join(names, ",") != "meshguard.local,partner.test" {
		t.Fatalf("ALL trust domains = %v", names)
	}
}

// The soonest SVID expiry and the CA's are exported: they drive the
// SVIDExpiringSoon alert.
func TestIdentityExpiriesAreExported(t *testing.T) {
	s, _, _ := startCP(t)
	families, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if len(f.GetMetric()) == 1 && f.GetMetric()[0].GetGauge() != nil {
			got[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	now := float64(time.Now().Unix())
	svid, ca := got["meshguard_controlplane_svid_expiry_timestamp_seconds"], got["meshguard_controlplane_ca_expiry_timestamp_seconds"]
	if svid < now+30*60 || svid > now+3600+60 {
		t.Errorf("SVID expiry %v: want within the 1h SVID lifetime from now (%v)", svid, now)
	}
	if ca <= svid {
		t.Errorf("CA expiry %v not after the SVIDs' %v", ca, svid)
	}
}
