"""syscap capture: kernel backends, the native consumer, trace files, snapshots."""
