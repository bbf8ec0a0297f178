package logfile

import (
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
)

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRotationShiftsBackupsAndDropsTheOldest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := Open(path, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, line := range []string{"a\n", "bb\n", "ccc\n", "dddd\n", "e\n"} {
		if _, err := f.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if err := f.RotateIfDue(); err != nil {
			t.Fatal(err)
		}
	}
	// "a\nbb\n" reached 4 bytes → .1; "ccc\n" → .1 (old .1 → .2);
	// "dddd\n" → .1, .2 ← "ccc\n", "a\nbb\n" removed.
	if got := read(t, path); got != "e\n" {
		t.Errorf("current = %q, want %q", got, "e\n")
	}
	if got := read(t, Backup(path, 1)); got != "dddd\n" {
		t.Errorf(".1 = %q, want %q", got, "dddd\n")
	}
	if got := read(t, Backup(path, 2)); got != "ccc\n" {
		t.Errorf(".2 = %q, want %q", got, "ccc\n")
	}
	if _, err := os.Stat(Backup(path, 3)); !os.IsNotExist(err) {
		t.Errorf(".3 exists (err %v): only 2 backups are kept", err)
	}
}

func TestAReopenedFileCountsWhatItHolds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("0123456789\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.RotateIfDue(); err != nil {
		t.Fatal(err)
	}
	if got := read(t, Backup(path, 1)); got != "0123456789\n" {
		t.Errorf("the existing 11 bytes were not rotated at 8: .1 = %q", got)
	}
}

func TestWithoutASizeItNeverRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := Open(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(make([]byte, 1<<16))
	if err := f.RotateIfDue(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(Backup(path, 1)); !os.IsNotExist(err) {
		t.Errorf("rotated without a size limit (err %v)", err)
	}
}

func TestRotationNeedsABackup(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "log"), 10, 0); err == nil {
		t.Fatal("rotation with no backup accepted: it would delete the log")
	}
}

func TestAFailedRotationKeepsWriting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	f, err := Open(path, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("a\n"))
	// A directory where the backup goes makes the rename fail.
	if err := os.MkdirAll(filepath.Join(Backup(path, 1), "x"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := f.RotateIfDue(); err == nil {
		t.Fatal("rotation onto a non-empty directory reported no error")
	}
	if _, err := f.Write([]byte("b\n")); err != nil {
		t.Fatalf("write after a failed rotation: %v", err)
	}
	if got := read(t, path); got != "a\nb\n" {
		t.Errorf("log = %q, want both lines in place", got)
	}
}

// A write the disk cuts short (here: the file-size limit, as a full disk
// would) is taken back whole, so the file still ends with a whole line.
// The limit is process-wide: the check runs in a child process.
func TestAWriteCutShortIsTakenBack(t *testing.T) {
	if dir := os.Getenv("LOGFILE_FSIZE_CHILD"); dir != "" {
		partialWriteChild(t, dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAWriteCutShortIsTakenBack$", "-test.v")
	cmd.Env = append(os.Environ(), "LOGFILE_FSIZE_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if got := read(t, filepath.Join(dir, "log")); got != "first\n" {
		t.Fatalf("log = %q, want only the whole first line", got)
	}
}

func partialWriteChild(t *testing.T, dir string) {
	signal.Ignore(syscall.SIGXFSZ) // get EFBIG instead of dying
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 10, Max: 10}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(filepath.Join(dir, "log"), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	// 6 bytes are in; the limit lets 4 of these 8 through.
	if n, err := f.Write([]byte("second!\n")); err == nil || n != 0 {
		t.Fatalf("a write cut short: n %d, err %v; want 0 and the error", n, err)
	}
}
