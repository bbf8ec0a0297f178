package controlplane

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	sotwclient "github.com/envoyproxy/go-control-plane/pkg/client/sotw/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshguard/meshguard/internal/authztest"
	"github.com/meshguard/meshguard/internal/contract"
	"github.com/meshguard/meshguard/internal/xds"
)

// The status page, in a real browser (headless Chromium), shows real data:
// two proxies over ADS (one ACKing, one NACKing its listeners), the mesh's
// rollout, and a denial the real authorizer made; the screenshot has the
// green of SYNCED and the red of NACKED in it.
func TestTheStatusPageInABrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not on PATH: make chromium (Debian: apt-get install chromium)")
	}

	// An authorizer with the quickstart's orders policies, and one request
	// it denies.
	authz := authztest.Start(t, map[string]string{
		"orders/read.cedar":  mustRead(t, "../examples/quickstart/policies/orders/read.cedar"),
		"orders/write.cedar": mustRead(t, "../examples/quickstart/policies/orders/write.cedar"),
	}, "")
	if code, _ := authz.Check(authztest.Request{Method: "DELETE", Path: "/orders/42",
		Ext: map[string]string{contract.ExtService: "orders", contract.ExtPolicy: "orders", contract.ExtRoute: "orders/write"}}); code != 403 {
		t.Fatalf("the anonymous DELETE: %d, want 403", code)
	}

	// The control plane, with a rollout, and two proxies.
	mesh := testMesh(t)
	for _, f := range []string{"read.cedar", "write.cedar"} {
		write(t, filepath.Join(filepath.Dir(mesh), "policies", "orders-v2", f), mustRead(t, filepath.Join("../examples/quickstart/policies/orders-v2", f)))
	}
	edit(t, mesh, "match: {prefix: /orders, methods: [GET, HEAD]}\n", "match: {prefix: /orders, methods: [GET, HEAD]}\n          rollout: {candidate: orders-v2, stage: canary, percent: 10}\n")
	s := statusCP(t, mesh, authz.Server.AdminAddr())
	ads, err := grpc.NewClient(s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer ads.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	orders := sotwclient.NewADSClient(ctx, &corev3.Node{Id: "orders-0", Cluster: "orders"}, xds.ListenerType)
	payments := sotwclient.NewADSClient(ctx, &corev3.Node{Id: "payments-0", Cluster: "payments"}, xds.ListenerType)
	for _, c := range []sotwclient.ADSClient{orders, payments} {
		if err := c.InitConnect(ads); err != nil {
			t.Fatal(err)
		}
		fetch(t, c)
	}
	if err := orders.Ack(); err != nil {
		t.Fatal(err)
	}
	if err := payments.Nack("listener inbound: unknown filter (browser test)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "one SYNCED, one NACKED", func() bool {
		return state(s, "orders-0", "Listener").State == xds.Synced && state(s, "payments-0", "Listener").State == xds.Nacked
	})

	// Headless Chromium opens the page (the whole browser bounded to a minute).
	limit, cancelLimit := context.WithTimeout(context.Background(), time.Minute)
	defer cancelLimit()
	actx, cancelAlloc := chromedp.NewExecAllocator(limit, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+s.AdminAddr()+"/"), chromedp.WaitVisible("#proxies")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("chromium: text of %s: %v", sel, err)
		}
		return v
	}
	title, err := chromedp.Run(bctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	proxies, rollouts, denies := text("#proxies"), text("#rollouts"), text("#denies")
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("chromium: screenshot: %v", err)
	}
	shotPath := filepath.Join(t.TempDir(), "status.png")
	if dir := os.Getenv("MESHGUARD_SCREENSHOT_DIR"); dir != "" {
		shotPath = filepath.Join(dir, "status.png")
	}
	_ = os.WriteFile(shotPath, shot, 0o644)
	t.Logf("screenshot: %s (%d bytes)", shotPath, len(shot))

	if title != "meshguard · quickstart" {
		t.Errorf("title %q", title)
	}
	for _, want := range []string{"orders-0", "payments-0", "SYNCED", "NACKED", "unknown filter (browser test)"} {
		if !strings.Contains(proxies, want) {
			t.Errorf("proxies table lacks %q:\n%s", want, proxies)
		}
	}
	for _, want := range []string{"orders/read", "orders → orders-v2", "canary 10%", "Progressing"} {
		if !strings.Contains(rollouts, want) {
			t.Errorf("rollouts table lacks %q:\n%s", want, rollouts)
		}
	}
	for _, want := range []string{"DELETE /orders/42", "orders/write", "403"} {
		if !strings.Contains(denies, want) {
			t.Errorf("denies table lacks %q:\n%s", want, denies)
		}
	}

	// The screenshot is the rendered page: the badges' colours are in it.
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	green := countColour(img, 0x1b, 0x7f, 0x3b)
	red := countColour(img, 0xc6, 0x28, 0x28)
	if green < 200 || red < 200 {
		t.Errorf("screenshot has %d SYNCED-green and %d NACKED-red pixels, want both rendered (see %s)", green, red, shotPath)
	}
}

// countColour counts the pixels within a small distance of one colour.
func countColour(img image.Image, r, g, b uint8) int {
	n := 0
	bounds := img.Bounds()
	near := func(a uint32, want uint8) bool { d := int(a>>8) - int(want); return d > -8 && d < 8 }
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if near(pr, r) && near(pg, g) && near(pb, b) {
				n++
			}
		}
	}
	return n
}
