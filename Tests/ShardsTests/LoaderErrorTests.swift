import XCTest
import MemoryLedger
@testable import Shards

final class LoaderErrorTests: XCTestCase {
    func testDecoderFailureAtABlockIsThrownForEveryThreadCount() throws {
        // Block 0 fails while filling the pool, block 13 on a later refill (shuffled or not).
        for failing in [0, 13] {
            for threads in 0...3 {
                for shuffle in [true, false] {
                    let source = LoaderFixtures.uniformSource(blocks: 20, recordsPerBlock: 25, failingBlock: failing)
                    let loader = try BatchLoader(source: source, config: LoaderFixtures.config(shuffle: shuffle, threads: threads),
                                                 ledger: Ledger())
                    var handedOut = Set<Int>()
                    var caught: Error?
                    do {
                        while let batch = try loader.nextBatch() {
                            for i in 0..<batch.count { handedOut.insert(LoaderFixtures.recordID(batch, i)) }
                        }
                    } catch {
                        caught = error
                    }
                    let context = "failing \(failing) threads \(threads) shuffle \(shuffle)"
                    guard case LoaderError.decodeFailed(let block, let underlying)? = caught else {
                        XCTFail("expected decodeFailed, got \(String(describing: caught)); \(context)"); continue
                    }
                    XCTAssertEqual(block, failing, context)
                    XCTAssertTrue(underlying is InMemoryBlockSource.InjectedFailure, context)
                    XCTAssertTrue("\(caught!)".contains("block \(failing)"), context)
                    // No record of the failed block was handed out, and the loader keeps failing.
                    XCTAssertTrue(handedOut.isDisjoint(with: (failing * 25)..<(failing * 25 + 25)), context)
                    XCTAssertThrowsError(try loader.nextBatch(), context) { again in
                        guard case LoaderError.decodeFailed(block: failing, _) = again else { return XCTFail("\(again); \(context)") }
                    }
                }
            }
        }
    }

    func testDecodedRecordCountDifferentFromTheIndexIsThrown() throws {
        let source = LoaderFixtures.source(blockSizes: [10, 10, 10], miscountedBlock: 1)
        let loader = try BatchLoader(source: source, config: LoaderFixtures.config(threads: 2), ledger: Ledger())
        XCTAssertThrowsError(try LoaderOutput.drain(loader)) { error in
            guard case LoaderError.recordCountMismatch(block: 1, expected: 10, decoded: 11) = error else { return XCTFail("\(error)") }
        }
    }

    func testLabelOutsideTheClassRangeIsThrown() throws {
        let source = LoaderFixtures.source(blockSizes: [10, 10], label: { $0 == 17 ? 12 : 3 })
        let loader = try BatchLoader(source: source, config: LoaderFixtures.config(batchSize: 4, shuffle: false, threads: 1),
                                     ledger: Ledger())
        XCTAssertEqual(try LoaderOutput.drain(loader, limit: 4).labels.count, 16)
        XCTAssertThrowsError(try loader.nextBatch()) { error in
            guard case LoaderError.labelOutOfRange(block: 1, record: 7, label: 12, classCount: 10) = error else { return XCTFail("\(error)") }
        }
    }

    func testSchemaWithoutAnImageFieldIsRefused() {
        let schema = RecordSchema(fields: [Field(name: "pixels", type: .uint8, shape: [4, 4]),
                                           Field(name: "label", type: .uint8, shape: [])], classCount: 10)
        let source = InMemoryBlockSource(schema: schema, blocks: [[UInt8](repeating: 0, count: 17 * 3)])
        XCTAssertThrowsError(try BatchLoader(source: source, config: LoaderFixtures.config(), ledger: Ledger())) { error in
            guard case LoaderError.unsupportedSchema = error else { return XCTFail("\(error)") }
        }
    }

    func testInvalidConfigurationIsRefusedBeforeAllocating() {
        let ledger = Ledger()
        let source = LoaderFixtures.uniformSource(blocks: 2, recordsPerBlock: 5)
        var config = LoaderFixtures.config()
        config.batchSize = 0
        XCTAssertThrowsError(try BatchLoader(source: source, config: config, ledger: ledger)) { error in
            guard case LoaderError.invalidConfig(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("batch"), message)
        }
        config = LoaderFixtures.config()
        config.mean = [0, 0]  // two values for one channel
        XCTAssertThrowsError(try BatchLoader(source: source, config: config, ledger: ledger)) { error in
            guard case LoaderError.invalidConfig(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("2 values for 1 channels"), message)
        }
        XCTAssertEqual(ledger.current().total, 0)
    }
}
