package proctest

import (
	"os/exec"
	"strings"
	"sync"
	"testing"
)

func TestOutputKeepsWhatAProcessWrites(t *testing.T) {
	var o Output
	cmd := exec.Command("sh", "-c", "echo out; echo err >&2")
	cmd.Stdout, cmd.Stderr = &o, &o
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if got := o.String(); !strings.Contains(got, "out\n") || !strings.Contains(got, "err\n") {
		t.Fatalf("output %q, want both streams", got)
	}
}

func TestOutputStopsAtItsBoundAndKeepsTheStart(t *testing.T) {
	var o Output
	line := []byte(strings.Repeat("x", 1000) + "\n")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range MaxOutput / len(line) {
				if n, err := o.Write(line); n != len(line) || err != nil {
					t.Errorf("Write = %d, %v; want %d, nil (dropping is not an error to the writer)", n, err, len(line))
					return
				}
			}
		})
	}
	wg.Wait()
	if got := len(o.String()); got != MaxOutput {
		t.Fatalf("kept %d bytes, want exactly %d", got, MaxOutput)
	}
}
