package auth

import (
	"context"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// A KeyStore holds the keys of a key file for a server, and lets them
// change while it serves: Reload reads the file again and swaps the new keys
// in atomically, so a handshake sees either the old set or the new one,
// never a mix, and connections already open are not touched. A file that
// fails to load leaves the old keys in place.
//
// This is what makes rotation free of downtime: add the new key to the
// file and reload, move clients to it at their own pace (the server accepts
// both), then remove the old key and reload again.
//
// A KeyStore is safe for concurrent use. Plug it into a listener with
// WithKeyStore.
type KeyStore struct {
	path string
	mu   sync.Mutex // serializes loads
	cur  atomic.Pointer[keySet]
	last atomic.Pointer[fileStamp] // the file as of the last load attempt
}

// keySet is one immutable generation of keys.
type keySet struct {
	file *KeyFile
	byID map[string][]byte
}

// fileStamp identifies one version of a file well enough to notice edits
// and replacements.
type fileStamp struct {
	info fs.FileInfo // nil when the file could not be stat'ed
}

func (a *fileStamp) same(b *fileStamp) bool {
	if a == nil || b == nil || a.info == nil || b.info == nil {
		return a != nil && b != nil && a.info == nil && b.info == nil
	}
	return os.SameFile(a.info, b.info) &&
		a.info.Size() == b.info.Size() &&
		a.info.ModTime().Equal(b.info.ModTime()) &&
		a.info.Mode() == b.info.Mode()
}

// LoadKeyFile reads the key file at path and returns a KeyStore holding its
// keys. See KeyFile for the format and KeyStore for reloading.
func LoadKeyFile(path string) (*KeyStore, error) {
	s := &KeyStore{path: path}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path returns the key file's path.
func (s *KeyStore) Path() string { return s.path }

// Reload reads the key file again and, if it loads, replaces the keys in
// one atomic step. Handshakes in progress finish with the keys they
// started with; later ones use the new keys. If the file does not load,
// Reload returns an error naming the file and line, and the store keeps
// its old keys.
func (s *KeyStore) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	kf, fi, err := readKeyFile(s.path)
	s.last.Store(&fileStamp{info: fi})
	if err != nil {
		return err
	}
	set := &keySet{file: kf, byID: make(map[string][]byte, len(kf.Entries))}
	for _, e := range kf.Entries {
		set.byID[e.ID] = e.Key
	}
	s.cur.Store(set)
	return nil
}

// Lookup returns a copy of the key stored under id. An unknown key ID gives
// an error wrapping ErrUnknownKeyID. Its signature is a KeyLookup.
func (s *KeyStore) Lookup(id string) ([]byte, error) {
	if k, ok := s.set().byID[id]; ok {
		return append([]byte(nil), k...), nil
	}
	return nil, errf([]error{ErrUnknownKeyID}, "key ID %q is not in %s", id, s.path)
}

// IDs returns the key IDs of the current keys, in the order of the file.
func (s *KeyStore) IDs() []string { return s.set().file.IDs() }

// Warnings returns the warnings of the current key file, such as loose
// permissions.
func (s *KeyStore) Warnings() []string {
	return append([]string(nil), s.set().file.Warnings...)
}

// emptySet stands in for the keys of a KeyStore that was never loaded.
var emptySet = &keySet{file: &KeyFile{}}

func (s *KeyStore) set() *keySet {
	if set := s.cur.Load(); set != nil {
		return set
	}
	return emptySet
}

// Changed reports whether the key file differs (by identity, size,
// modification time or permissions) from the version the store last tried
// to load, successfully or not.
func (s *KeyStore) Changed() bool {
	return !s.last.Load().same(s.stat())
}

func (s *KeyStore) stat() *fileStamp {
	fi, err := os.Stat(s.path)
	if err != nil {
		return &fileStamp{}
	}
	return &fileStamp{info: fi}
}

// Watch polls the key file every interval until ctx is done, and reloads
// it when it has changed and then stayed unchanged for one more interval,
// so a file caught in the middle of being written is not loaded. After each
// reload it calls report, if not nil, with Reload's result. A file that
// fails to load is not retried until it changes again. Watch returns when
// ctx is done; run it on its own goroutine. Replacing the file by renaming
// a new one over it (what most editors and configuration tools do) is the
// safest way to edit it.
func (s *KeyStore) Watch(ctx context.Context, interval time.Duration, report func(error)) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var prev *fileStamp
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.stat()
		if !st.same(s.last.Load()) && st.same(prev) {
			err := s.Reload()
			if report != nil {
				report(err)
			}
		}
		prev = st
	}
}

// WithKeyStore sets, on a server, a KeyStore to find keys in at handshake
// time; it is WithKeyLookup(s.Lookup). Reloading the store changes the keys
// of the listener without a restart.
func WithKeyStore(s *KeyStore) Option {
	return func(c *config) error {
		if s == nil {
			return errf(nil, "WithKeyStore(nil): load one with auth.LoadKeyFile")
		}
		c.lookup = s.Lookup
		return nil
	}
}
