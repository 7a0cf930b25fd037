// Package zapslog hands the log/slog records of Prometheus libraries
// (scrape, discovery, node_exporter's collectors) to the collector's zap
// logger, so they carry the component id like every other log line.
package zapslog

import (
	"context"
	"log/slog"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

type zapHandler struct {
	logger *zap.Logger
}

// New returns a slog logger writing to logger. The caller and stack trace zap
// would add point into log/slog, not at the library's code, so they are left out.
func New(logger *zap.Logger) *slog.Logger {
	return slog.New(zapHandler{logger: logger.WithOptions(zap.WithCaller(false), zap.AddStacktrace(zapcore.FatalLevel))})
}

func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l >= slog.LevelError:
		return zapcore.ErrorLevel
	case l >= slog.LevelWarn:
		return zapcore.WarnLevel
	case l >= slog.LevelInfo:
		return zapcore.InfoLevel
	}
	return zapcore.DebugLevel
}

func (h zapHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.logger.Core().Enabled(zapLevel(l))
}

func (h zapHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make([]zap.Field, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
		return true
	})
	if ce := h.logger.Check(zapLevel(r.Level), r.Message); ce != nil {
		ce.Write(fields...)
	}
	return nil
}

func (h zapHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	fields := make([]zap.Field, 0, len(attrs))
	for _, a := range attrs {
		fields = append(fields, zap.Any(a.Key, a.Value.Any()))
	}
	return zapHandler{logger: h.logger.With(fields...)}
}

func (h zapHandler) WithGroup(name string) slog.Handler {
	return zapHandler{logger: h.logger.With(zap.Namespace(name))}
}
