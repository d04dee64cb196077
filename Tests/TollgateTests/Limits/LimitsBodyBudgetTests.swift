import Testing
@testable import Tollgate

@Suite struct LimitsBodyBudgetTests {
    @Test func oneOwnerGetsAtMostHalfAndEveryoneTogetherTheWhole() {
        var budget = BodyBudget()
        let first = budget.charge(400, owner: "alice", total: 1000)
        #expect(first)
        let second = budget.charge(100, owner: "alice", total: 1000)
        #expect(second)
        let aliceOver = budget.charge(1, owner: "alice", total: 1000)
        #expect(!aliceOver, "alice past her half")
        let bob = budget.charge(500, owner: "bob", total: 1000)
        #expect(bob)
        let carolOver = budget.charge(1, owner: "carol", total: 1000)
        #expect(!carolOver, "the whole budget is held")
        #expect(budget.held == 1000)
        budget.release(500, owner: "alice")
        #expect(budget.held(by: "alice") == 0)
        let carol = budget.charge(500, owner: "carol", total: 1000)
        #expect(carol)
        budget.release(500, owner: "bob")
        budget.release(500, owner: "carol")
        #expect(budget.held == 0)
    }
}
