// Package logfile is an append-only log file that rotates by size:
// path becomes path.1, path.1 becomes path.2, and so on, the oldest beyond
// the number of backups removed. The writer decides when to rotate (at a
// line boundary), so a line never straddles two files.
package logfile

import (
	"errors"
	"fmt"
	"os"
)

// File is an append-only file that rotates by size. Use it from one
// goroutine.
type File struct {
	path     string
	maxBytes int64 // 0: never rotate
	backups  int
	f        *os.File
	size     int64
}

// Open appends to path, creating it (0640). With maxBytes > 0, RotateIfDue
// rotates once the file holds maxBytes, keeping backups older files
// (at least 1).
func Open(path string, maxBytes int64, backups int) (*File, error) {
	if maxBytes > 0 && backups < 1 {
		return nil, errors.New("rotation needs at least one backup")
	}
	l := &File{path: path, maxBytes: maxBytes, backups: backups}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

// Backup is the name of the i-th most recent rotated file (i ≥ 1).
func Backup(path string, i int) string { return fmt.Sprintf("%s.%d", path, i) }

func (l *File) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Write appends p whole or not at all: when the write fails part way (a
// full disk), the part written is cut off again, so the file keeps ending
// with the last whole write and the next one starts a line.
func (l *File) Write(p []byte) (int, error) {
	if l.f == nil {
		return 0, errors.New("log file closed")
	}
	n, err := l.f.Write(p)
	if err != nil && n > 0 {
		if terr := l.f.Truncate(l.size); terr != nil {
			// The fragment stays; count it so rotation stays honest.
			l.size += int64(n)
			return n, errors.Join(err, terr)
		}
		return 0, err
	}
	l.size += int64(n)
	return n, err
}

// RotateIfDue rotates when the file has reached its size. Call it between
// lines.
func (l *File) RotateIfDue() error {
	if l.maxBytes <= 0 || l.size < l.maxBytes {
		return nil
	}
	return l.Rotate()
}

// Rotate moves the current file to path.1 (shifting older ones up and
// removing the one beyond the backups kept) and starts a new file. When a
// rename fails the file stays where it is and writing goes on in it.
func (l *File) Rotate() error {
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	err = errors.Join(err, l.shift())
	if oerr := l.open(); oerr != nil {
		err = errors.Join(err, oerr)
	}
	if err != nil {
		return fmt.Errorf("rotate %s: %w", l.path, err)
	}
	return nil
}

func (l *File) shift() error {
	if err := os.Remove(Backup(l.path, l.backups)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for i := l.backups - 1; i >= 1; i-- {
		if err := os.Rename(Backup(l.path, i), Backup(l.path, i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return os.Rename(l.path, Backup(l.path, 1))
}

// Close closes the file.
func (l *File) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
