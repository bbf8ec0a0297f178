// Package filewatch calls a function when files change, debounced.
//
// It watches directories rather than files: editors and Kubernetes ConfigMap
// mounts replace files by rename, which drops a watch placed on the file
// itself. Events under a watched directory are coalesced for Debounce before
// the callback runs, so a burst of writes yields one reload.
package filewatch

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce is how long the watcher waits after the last event before
// calling back; MaxDelay bounds the wait when events never stop (a log file
// being written next to a watched file), so a change is applied regardless.
const (
	Debounce = 100 * time.Millisecond
	MaxDelay = 500 * time.Millisecond
)

// Watcher watches directories; Run delivers debounced change callbacks.
type Watcher struct {
	w         *fsnotify.Watcher
	recursive bool
	match     func(path string) bool
}

// Only makes the watcher ignore events on paths for which match is false.
func (fw *Watcher) Only(match func(path string) bool) *Watcher {
	fw.match = match
	return fw
}

// New starts watching each directory in dirs (and, when recursive, each
// subdirectory that exists or appears later). Changes made after New returns
// are seen by Run, so callers can load files right after New without a gap.
func New(dirs []string, recursive bool) (*Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("create file watcher: %w", err)
	}
	for _, d := range dirs {
		if err := add(w, d, recursive); err != nil {
			w.Close()
			return nil, err
		}
	}
	return &Watcher{w: w, recursive: recursive}, nil
}

// Watch is New followed by Run.
func Watch(ctx context.Context, dirs []string, recursive bool, onChange func()) error {
	w, err := New(dirs, recursive)
	if err != nil {
		return err
	}
	w.Run(ctx, onChange)
	return nil
}

// Run calls onChange after each burst of events settles, until ctx is done;
// then it releases the watcher.
func (fw *Watcher) Run(ctx context.Context, onChange func()) {
	w := fw.w
	defer w.Close()
	var timer *time.Timer
	var fire <-chan time.Time
	var first time.Time // first event of the pending burst
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if fw.recursive && ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = add(w, ev.Name, true)
				}
			}
			if fw.match != nil && !fw.match(ev.Name) {
				continue
			}
			if fire == nil {
				first = time.Now()
			}
			wait := min(Debounce, MaxDelay-time.Since(first))
			if timer == nil {
				timer = time.NewTimer(max(wait, 0))
			} else {
				timer.Reset(max(wait, 0))
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			slog.Warn("file watcher error", "err", err)
		case <-fire:
			fire = nil
			onChange()
		}
	}
}

func add(w *fsnotify.Watcher, dir string, recursive bool) error {
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	if !recursive {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := add(w, filepath.Join(dir, e.Name()), true); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close releases a watcher that will not Run.
func (fw *Watcher) Close() error { return fw.w.Close() }
