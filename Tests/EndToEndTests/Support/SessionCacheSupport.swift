@testable import TollgateIO

/// `attempt`'s result, taken again (three times at most) while the process's session cache was emptied during it:
/// the cache is the process's, and a suite running beside the caller that swaps in another certificate empties it.
/// Only an attempt during which it was not emptied says whether sessions resume.
func withSteadyCache<T>(_ attempt: () throws -> T) rethrows -> T {
    var tries = 0
    while true {
        let before = TLSSessionCache.generation
        let result = try attempt()
        tries += 1
        if TLSSessionCache.generation == before || tries == 3 { return result }
    }
}
