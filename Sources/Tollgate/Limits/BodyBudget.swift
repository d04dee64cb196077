/// The request-body bytes one worker holds in memory while bodies are read whole, and each owner's part of them.
///
/// A worker may hold `total` bytes, and one owner (a user, or a client address with authentication off) at most half
/// of that, so one client trickling large bodies can never take the whole budget from everyone else. Pure value:
/// the worker keeps one and applies `charge`/`release` on its loop thread.
struct BodyBudget {
    /// Bytes held on this worker.
    private(set) var held = 0
    private var byOwner: [String: Int] = [:]

    /// Bytes `owner` holds.
    func held(by owner: String) -> Int { byOwner[owner] ?? 0 }

    /// Whether `bytes` more for `owner` fit within `total` and the owner's half of it.
    func fits(_ bytes: Int, owner: String, total: Int) -> Bool {
        held + bytes <= total && held(by: owner) + bytes <= total / 2
    }

    /// Counts `bytes` for `owner` if they fit; false (nothing counted) otherwise.
    mutating func charge(_ bytes: Int, owner: String, total: Int) -> Bool {
        guard fits(bytes, owner: owner, total: total) else { return false }
        held += bytes
        byOwner[owner, default: 0] += bytes
        return true
    }

    /// Gives back `bytes` that `owner` held.
    mutating func release(_ bytes: Int, owner: String) {
        guard bytes > 0 else { return }
        held -= bytes
        let left = (byOwner[owner] ?? 0) - bytes
        byOwner[owner] = left > 0 ? left : nil
    }
}
