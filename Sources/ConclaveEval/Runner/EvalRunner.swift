import AsyncHTTPClient
import Foundation
import NIOCore

/// Runs tasks against a Conclave server over HTTP, like any client: each task is one
/// conversation, sent turn by turn as the task's user.
public struct EvalRunner: Sendable {
    /// The outcome of one task under one workflow.
    public struct Outcome: Sendable, Codable {
        public var taskID: String
        public var type: String
        public var workflow: String
        public var group: String?
        public var answers: [String]
        public var verdict: Verdict
        public var turnPasses: [Bool]
        public var citedSources: [String]
        public var expectedSources: [String]
        public var refused: Bool
        public var saidNotAvailable: Bool
        public var expectedRefusal: Bool
        public var latencySeconds: [Double]
        public var error: String?
        /// The agents' prompts version the server reported (`conclave.prompts_version`).
        public var promptsVersion: String?

        /// Creates an outcome.
        public init(taskID: String, type: String, workflow: String, group: String?, answers: [String], verdict: Verdict,
                    turnPasses: [Bool], citedSources: [String], expectedSources: [String], refused: Bool,
                    saidNotAvailable: Bool, expectedRefusal: Bool, latencySeconds: [Double], error: String?,
                    promptsVersion: String? = nil) {
            self.taskID = taskID
            self.type = type
            self.workflow = workflow
            self.group = group
            self.answers = answers
            self.verdict = verdict
            self.turnPasses = turnPasses
            self.citedSources = citedSources
            self.expectedSources = expectedSources
            self.refused = refused
            self.saidNotAvailable = saidNotAvailable
            self.expectedRefusal = expectedRefusal
            self.latencySeconds = latencySeconds
            self.error = error
            self.promptsVersion = promptsVersion
        }

        enum CodingKeys: String, CodingKey {
            case taskID = "task_id", type, workflow, group, answers, verdict
            case turnPasses = "turn_passes", citedSources = "cited_sources", expectedSources = "expected_sources"
            case refused, saidNotAvailable = "said_not_available", expectedRefusal = "expected_refusal"
            case latencySeconds = "latency_seconds", error, promptsVersion = "prompts_version"
        }
    }

    /// Base URL of the server.
    public var baseURL: String
    /// Sampling seed sent with every request.
    public var seed: Int
    /// Upper bound of one request.
    public var requestTimeout: TimeAmount
    /// The HTTP client.
    public var client: HTTPClient
    /// The bearer credential for a task's user (nil: send none), e.g. a token from `conclave token`.
    public var credential: @Sendable (String) async throws -> String?

    /// A client whose read timeout does not cut off a slow answer before the request's own deadline
    /// (a busy CPU-only model can be silent for minutes under load).
    public static let patientClient = HTTPClient(
        eventLoopGroup: HTTPClient.defaultEventLoopGroup,
        configuration: .init(timeout: .init(connect: .seconds(10), read: .seconds(900))))

    /// Creates a runner.
    public init(baseURL: String, seed: Int = 42, requestTimeout: TimeAmount = .seconds(600),
                client: HTTPClient = EvalRunner.patientClient,
                credential: @escaping @Sendable (String) async throws -> String? = { _ in nil }) {
        self.baseURL = baseURL
        self.seed = seed
        self.requestTimeout = requestTimeout
        self.client = client
        self.credential = credential
    }

    /// Checks that the server answers `/healthz`, so a wrong URL fails at once with a clear error.
    public func checkReachable() async throws {
        var request = HTTPClientRequest(url: baseURL + "/healthz")
        request.method = .GET
        do {
            let response = try await client.execute(request, timeout: .seconds(5))
            _ = try await response.body.collect(upTo: 1 << 16)
            guard response.status == .ok else { throw EvalError("\(baseURL)/healthz answered \(response.status.code)") }
        } catch let error as EvalError {
            throw error
        } catch {
            throw EvalError("no Conclave server answers at \(baseURL) (\(error))")
        }
    }

    /// Runs `tasks` for `workflow` with up to `concurrency` tasks at a time; `progress` is called
    /// after each task.
    public func run(_ tasks: [EvalTask], workflow: String, concurrency: Int,
                    progress: @Sendable (Int, Int) -> Void = { _, _ in }) async -> [Outcome] {
        var results: [Int: Outcome] = [:]
        await withTaskGroup(of: (Int, Outcome).self) { group in
            var next = 0
            var done = 0
            func launch() {
                guard next < tasks.count else { return }
                let index = next
                next += 1
                group.addTask { (index, await self.run(tasks[index], workflow: workflow)) }
            }
            for _ in 0..<max(1, concurrency) { launch() }
            while let (index, outcome) = await group.next() {
                results[index] = outcome
                done += 1
                progress(done, tasks.count)
                launch()
            }
        }
        return tasks.indices.compactMap { results[$0] }
    }

    /// Runs one task.
    public func run(_ task: EvalTask, workflow: String) async -> Outcome {
        var answers: [String] = []
        var latencies: [Double] = []
        var cited: [String] = []
        var conversation: String?
        var failure: String?
        var promptsVersion: String?
        for turn in task.turns {
            let start = ContinuousClock.now
            do {
                let (answer, sources, id, version) = try await send(turn.user, user: task.user, workflow: workflow,
                                                                    conversation: conversation)
                conversation = id
                promptsVersion = version ?? promptsVersion
                answers.append(answer)
                cited = sources
            } catch {
                failure = "\(error)"
                answers.append("")
                cited = []
            }
            let d = ContinuousClock.now - start
            latencies.append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
            if failure != nil { break }
        }
        let final = answers.last ?? ""
        var verdict = Scorer.score(final, expect: task.expect)
        if let failure { verdict = Verdict(passed: false, reasons: ["request failed: \(failure)"]) }
        let turnPasses = zip(task.turns, answers).compactMap { turn, answer in
            turn.expect.map { Scorer.scoreTurn(answer, expect: $0) }
        }
        return Outcome(taskID: task.id, type: task.type, workflow: workflow, group: task.group, answers: answers,
                       verdict: verdict, turnPasses: turnPasses, citedSources: cited,
                       expectedSources: task.expect.sources, refused: Scorer.isRefusal(final),
                       saidNotAvailable: Scorer.saysNotAvailable(final), expectedRefusal: task.expect.refusal,
                       latencySeconds: latencies, error: failure, promptsVersion: promptsVersion)
    }

    /// Each consistency group's mean pairwise cosine similarity of its final answers, embedded by
    /// the server's `/v1/embeddings` (`minilm`) with the credential of the group's first task's
    /// user. Groups whose embeddings cannot be fetched are left out (an empty result when the
    /// server has no embedding model).
    public func groupSimilarities(_ outcomes: [Outcome], tasks: [EvalTask]) async -> [String: Double] {
        let users = Dictionary(tasks.map { ($0.id, $0.user) }, uniquingKeysWith: { a, _ in a })
        let groups = Dictionary(grouping: outcomes.filter { $0.type == "consistency" && $0.group != nil && $0.error == nil },
                                by: { $0.group ?? "" })
        var result: [String: Double] = [:]
        for (group, members) in groups where members.count > 1 {
            let answers = members.map { $0.answers.last ?? "" }
            guard let user = users[members[0].taskID],
                  let vectors = try? await embed(answers, user: user),
                  let similarity = EvalSummary.meanPairwiseCosine(vectors) else { continue }
            result[group] = similarity
        }
        return result
    }

    /// Embeds `texts` through the server's `/v1/embeddings`.
    func embed(_ texts: [String], user: String) async throws -> [[Double]] {
        var request = HTTPClientRequest(url: baseURL + "/v1/embeddings")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let token = try await credential(user) { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: ["model": "minilm", "input": texts])))
        let response = try await client.execute(request, timeout: requestTimeout)
        let bytes = try await response.body.collect(upTo: 16 << 20)
        guard response.status == .ok else { throw EvalError("embeddings: HTTP \(response.status.code)") }
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        let data = (json["data"] as? [[String: Any]]) ?? []
        let vectors = data.sorted { ($0["index"] as? Int ?? 0) < ($1["index"] as? Int ?? 0) }
            .compactMap { ($0["embedding"] as? [Any])?.compactMap { ($0 as? NSNumber)?.doubleValue } }
        guard vectors.count == texts.count else { throw EvalError("embeddings: \(vectors.count) vectors for \(texts.count) texts") }
        return vectors
    }

    private func send(_ text: String, user: String, workflow: String, conversation: String?) async throws
        -> (String, [String], String?, String?)
    {
        var request = HTTPClientRequest(url: baseURL + "/v1/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let conversation { request.headers.add(name: "X-Conclave-Conversation", value: conversation) }
        if let token = try await credential(user) { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let body: [String: Any] = [
            "model": workflow.hasPrefix("conclave/") ? workflow : "conclave/" + workflow,
            "messages": [["role": "user", "content": text]], "user": user, "temperature": 0, "seed": seed,
        ]
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response = try await client.execute(request, timeout: requestTimeout)
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        guard response.status == .ok else {
            let message = ((json["error"] as? [String: Any])?["message"] as? String) ?? "HTTP \(response.status.code)"
            throw EvalError("HTTP \(response.status.code): \(message)")
        }
        let answer = (((json["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String) ?? ""
        let annotations = json["conclave"] as? [String: Any]
        let citations = (annotations?["citations"] as? [[String: Any]]) ?? []
        let sources = Array(Set(citations.compactMap { $0["source_id"] as? String })).sorted()
        return (answer, sources, json["conversation_id"] as? String, annotations?["prompts_version"] as? String)
    }
}
