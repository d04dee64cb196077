import Glibc

/// Boxes a thread body so it can cross `pthread_create`'s C boundary.
private final class ThreadBody: @unchecked Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Starts a joinable pthread running `body`.
///
/// Lives in the library and is `nonisolated` on purpose: in Swift 6 a closure written in `main.swift` top-level code
/// is main-actor isolated and traps when a pthread runs it.
nonisolated func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        guard let arg else { return nil }
        let body = Unmanaged<ThreadBody>.fromOpaque(arg).takeRetainedValue()
        body.run()
        return nil
    }, box)
    if rc != 0 {
        Unmanaged<ThreadBody>.fromOpaque(box).release()
        return nil
    }
    return tid
}

/// Starts a detached pthread running `body`; returns false if the thread could not be created.
nonisolated func startDetachedThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    guard let tid = startThread(body) else { return false }
    pthread_detach(tid)
    return true
}
