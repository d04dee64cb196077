import Foundation
import Glibc

/// Kills a child with SIGKILL and reaps it with `waitpid` itself. Foundation's `Process.waitUntilExit` was seen
/// to spin forever on a child already dead (a zombie its monitor never collected) when many children come and go
/// in one test process; a direct `waitpid` returns as soon as the child is gone, or at once when Foundation
/// reaped it first (ECHILD).
public func killAndReap(_ process: Process) {
    let pid = process.processIdentifier
    guard pid > 0 else { return }
    Glibc.kill(pid, SIGKILL)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
}
