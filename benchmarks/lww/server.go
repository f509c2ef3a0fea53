package lww

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
)

// Server is the baseline's HTTP API over a Store.
type Server struct {
	store  Store
	logger *slog.Logger
	mux    *http.ServeMux
}

// NewServer returns the HTTP API of st; a nil logger discards logs.
func NewServer(st Store, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{store: st, logger: logger, mux: http.NewServeMux()}
	s.mux.HandleFunc("PUT /lww/{collection}/{id}", s.put)
	s.mux.HandleFunc("GET /lww/{collection}/{id}", s.get)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) key(w http.ResponseWriter, r *http.Request) (string, bool) {
	c, id := r.PathValue("collection"), r.PathValue("id")
	if !collectionRE.MatchString(c) || !idRE.MatchString(id) {
		writeError(w, http.StatusBadRequest, "invalid_id", "bad collection or id")
		return "", false
	}
	return Key(c, id), true
}

func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	key, ok := s.key(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRecordBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "read body: "+err.Error())
		return
	}
	if len(body) > MaxRecordBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "record over the size limit")
		return
	}
	var v Version
	if err := json.Unmarshal(body, &v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "body: "+err.Error())
		return
	}
	if v.Stamp.Time <= 0 || v.Stamp.Writer == "" || len(v.Doc) == 0 || v.Doc[0] != '{' {
		writeError(w, http.StatusBadRequest, "bad_request", "want a stamp with time and writer, and a JSON object doc")
		return
	}
	stored, err := s.store.Put(r.Context(), key, v)
	if err != nil {
		s.logger.Error("lww put", "key", key, "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "store failed")
		return
	}
	writeJSON(w, http.StatusOK, stored)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	key, ok := s.key(w, r)
	if !ok {
		return
	}
	v, err := s.store.Get(r.Context(), key)
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "no such record")
		return
	}
	if err != nil {
		s.logger.Error("lww get", "key", key, "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "store failed")
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"encode"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
