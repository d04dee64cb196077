/// Fleet-wide slots as the `Concurrency` phase takes them. Every answer goes through the resumption, even one given
/// before `acquire` returns (the local fallback decides at once): the runner takes that as the phase's decision, so
/// a queue place is recorded before a grant the same call makes (the fallback serves its queue at once).
extension SharedSlots: SlotProvider {
    func acquire(user: String, perUser: Int?, nowMillis: UInt64, later: Resumption<SlotAnswer>) -> NowOrLater<SlotAnswer> {
        acquire(user: user, perUser: perUser, onGranted: { grant in
            later.resume(.waitOver(grant))
        }, onExpired: {
            later.resume(.expired)
        }, onUnavailable: {
            later.resume(.unavailable)
        }, completion: { answer in
            switch answer {
            case .granted(let grant): later.resume(.granted(grant))
            case .queued(let ticket): later.resume(.queued(ticket: ticket))
            case .rejected(let retryAfter): later.resume(.rejected(retryAfterSeconds: retryAfter))
            case .unavailable: later.resume(.unavailable)
            }
        })
        return .later
    }
}
