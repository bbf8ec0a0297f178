package identity_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/identity/sds"
	"github.com/meshguard/meshguard/identity/svid"
)

const spireVersion = "v1.13.3"

// spireBin finds the SPIRE binaries tools/spire/build.sh builds (CI runs it
// before the tests; `make test` too).
func spireBin(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MESHGUARD_SPIRE_BIN")
	if dir == "" {
		home, _ := os.UserHomeDir()
		cache := os.Getenv("MESHGUARD_CACHE")
		if cache == "" {
			cache = filepath.Join(home, ".cache", "meshguard")
		}
		dir = filepath.Join(cache, "spire-"+spireVersion, "bin")
	}
	for _, b := range []string{"spire-server", "spire-agent"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("SPIRE %s binaries not found in %s: run tools/spire/build.sh (make test does)", spireVersion, dir)
		}
	}
	return dir
}

type spire struct {
	t                     *testing.T
	bin, dir              string
	serverSock, agentSock string
	td                    string
}

func (s *spire) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "spire-server"), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("spire-server %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func (s *spire) start(name string, args ...string) {
	s.t.Helper()
	logf, err := os.Create(filepath.Join(s.dir, name+".log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if s.t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			s.t.Logf("%s log:\n%s", name, b)
		}
	})
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startSPIRE(t *testing.T) *spire {
	bin := spireBin(t)
	dir, err := os.MkdirTemp("", "spire") // short path: Unix socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &spire{t: t, bin: bin, dir: dir, serverSock: filepath.Join(dir, "s.sock"), agentSock: filepath.Join(dir, "a.sock"), td: "meshguard.test"}
	port := freePort(t)
	server := fmt.Sprintf(`server {
  bind_address = "127.0.0.1"
  bind_port = "%d"
  socket_path = %q
  trust_domain = %q
  data_dir = %q
  log_level = "WARN"
  ca_key_type = "ec-p256"
  ca_ttl = "24h"
  default_x509_svid_ttl = "1h"
}
plugins {
  DataStore "sql" { plugin_data { database_type = "sqlite3"  connection_string = %q } }
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
}
`, port, s.serverSock, s.td, filepath.Join(dir, "server"), filepath.Join(dir, "datastore.sqlite3"))
	if err := os.WriteFile(filepath.Join(dir, "server.conf"), []byte(server), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start("spire-server", "run", "-config", filepath.Join(dir, "server.conf"))
	deadline := time.Now().Add(60 * time.Second)
	for {
		cmd := exec.Command(filepath.Join(bin, "spire-server"), "healthcheck", "-socketPath", s.serverSock)
		if cmd.Run() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("SPIRE server not healthy within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	out := s.run("token", "generate", "-spiffeID", "spiffe://meshguard.test/host", "-socketPath", s.serverSock)
	m := regexp.MustCompile(`Token: ([0-9a-f-]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no join token in %q", out)
	}
	agent := fmt.Sprintf(`agent {
  data_dir = %q
  log_level = "WARN"
  server_address = "127.0.0.1"
  server_port = "%d"
  socket_path = %q
  trust_domain = %q
  insecure_bootstrap = true
}
plugins {
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
`, filepath.Join(dir, "agent"), port, s.agentSock, s.td)
	if err := os.WriteFile(filepath.Join(dir, "agent.conf"), []byte(agent), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start("spire-agent", "run", "-config", filepath.Join(dir, "agent.conf"), "-joinToken", m[1])
	return s
}

// TestSPIREWorkloadServedOverSDS registers this test process as a workload
// with a real SPIRE server and agent, fetches its SVID through meshguard's
// Workload API source, serves it over meshguard's SDS, completes an mTLS
// handshake with the served certificate, and observes a rotation.
func TestSPIREWorkloadServedOverSDS(t *testing.T) {
	s := startSPIRE(t)
	const id = "spiffe://meshguard.test/ns/demo/sa/orders"
	// A short TTL makes the agent rotate within the test (at half-life).
	s.run("entry", "create", "-parentID", "spiffe://meshguard.test/host", "-spiffeID", id,
		"-selector", fmt.Sprintf("unix:uid:%d", os.Getuid()), "-x509SVIDTTL", "20", "-socketPath", s.serverSock)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	src, err := identity.WorkloadAPI(ctx, "unix://"+s.agentSock)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sv, err := src.GetX509SVID()
	if err != nil || sv.ID.String() != id {
		t.Fatalf("SVID from SPIRE: %v %v", sv, err)
	}
	if _, err := svid.Verify(sv.Certificates, src, time.Now()); err != nil {
		t.Fatalf("SPIRE's SVID fails strict validation: %v", err)
	}

	// Serve it over SDS.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	server := sds.New(src, nil, log)
	if err := server.Refresh(); err != nil {
		t.Fatal(err)
	}
	go server.Run(ctx, 200*time.Millisecond)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	server.Register(ctx, g)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := secretv3.NewSecretDiscoveryServiceClient(conn).StreamSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{sds.SecretSVID, sds.SecretBundle}
	req := &discovery.DiscoveryRequest{Node: &corev3.Node{Id: "orders-0"}, ResourceNames: names,
		TypeUrl: "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	served, resp := recvSVID(t, stream)
	first, _ := x509.ParseCertificate(served.Certificate[0])
	if first.URIs[0].String() != id {
		t.Fatalf("SDS served %v", first.URIs)
	}

	// mTLS: a server presenting the SDS-served SVID, a client on the Workload API.
	allow := identity.Policy{IDs: []string{id}}
	srvConf := identity.ServerTLS(src, src, allow)
	srvConf.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &served, nil }
	tl, err := tls.Listen("tcp", "127.0.0.1:0", srvConf)
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		c, err := tl.Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			_, _ = c.Write([]byte("ok"))
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", tl.Addr().String(), identity.ClientTLS(src, src, allow))
	if err != nil {
		t.Fatalf("mTLS with the SDS-served SVID: %v", err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("mTLS exchange: %v", err)
	}
	c.Close()

	// Rotation: the agent renews the 20s SVID at half-life; SDS pushes it.
	req.VersionInfo, req.ResponseNonce = resp.GetVersionInfo(), resp.GetNonce()
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	rotated, _ := recvSVID(t, stream)
	next, _ := x509.ParseCertificate(rotated.Certificate[0])
	if next.SerialNumber.Cmp(first.SerialNumber) == 0 || next.URIs[0].String() != id {
		t.Fatal("no rotation observed")
	}
	t.Logf("rotated: serial %s → %s, not after %s → %s", first.SerialNumber, next.SerialNumber, first.NotAfter, next.NotAfter)
}

func recvSVID(t *testing.T, stream secretv3.SecretDiscoveryService_StreamSecretsClient) (tls.Certificate, *discovery.DiscoveryResponse) {
	t.Helper()
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.GetResources() {
		var s tlsv3.Secret
		if err := a.UnmarshalTo(&s); err != nil {
			t.Fatal(err)
		}
		if s.GetName() == sds.SecretSVID {
			tc := s.GetTlsCertificate()
			cert, err := tls.X509KeyPair(tc.GetCertificateChain().GetInlineBytes(), tc.GetPrivateKey().GetInlineBytes())
			if err != nil {
				t.Fatal(err)
			}
			return cert, resp
		}
	}
	t.Fatal("no default secret in the SDS response")
	return tls.Certificate{}, nil
}
