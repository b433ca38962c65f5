package jslog

// Crash drops the log's connection without flushing or releasing
// anything, as a process killed with SIGKILL would.
func (l *Log) Crash() { l.nc.Close() }
