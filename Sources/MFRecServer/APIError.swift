import Foundation
import HTTPTypes
import Hummingbird
import MFRec

/// An error as the API answers it: a status, a stable machine-readable code and a message, as JSON
/// (`{"error": {"code": "...", "message": "..."}}`), never a stack trace.
struct APIError: Error, HTTPResponseError, Sendable {
    let status: HTTPResponse.Status
    let code: String
    let message: String
    /// Seconds for a `Retry-After` header (503 only).
    var retryAfter: Int?
    /// The methods for an `Allow` header (405 only).
    var allow: [String] = []

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, "bad_request", message) }

    struct Body: Encodable {
        struct Detail: Encodable {
            let code: String
            let message: String
        }
        let error: Detail
    }

    var headers: HTTPFields {
        var fields: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfter { fields[.retryAfter] = String(retryAfter) }
        if !allow.isEmpty { fields[.allow] = allow.joined(separator: ", ") }
        return fields
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(Body(error: .init(code: code, message: message)))) ?? Data()
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The answer for anything a handler or the framework threw.
    static func from(_ error: Error) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as MFRecError:
            return from(error)
        case let error as StoreError:
            if error.isBusy {
                return APIError(
                    .serviceUnavailable, "busy", "another process is writing to the database; try again shortly",
                    retryAfter: 1)
            }
            switch error {
            case .noSnapshot(let id): return APIError(.notFound, "unknown_snapshot", "there is no snapshot \(id)")
            case .readOnly: return APIError(.conflict, "read_only", error.description)
            default: return APIError(.internalServerError, "store_error", error.description)
            }
        case let error as HTTPResponseError:
            // The framework's own: no route (404), wrong method (405), body too large (413), ...
            let code: String
            switch error.status {
            case .notFound: code = "no_route"
            case .methodNotAllowed: code = "method_not_allowed"
            case .contentTooLarge: code = "body_too_large"
            case .badRequest: code = "bad_request"
            default: code = "http_\(error.status.code)"
            }
            return APIError(error.status, code, error.status.reasonPhrase)
        case is CancellationError:
            return APIError(.serviceUnavailable, "shutting_down", "the server is shutting down", retryAfter: 1)
        default:
            return APIError(.internalServerError, "internal", "\(error)")
        }
    }

    private static func from(_ error: MFRecError) -> APIError {
        let message = error.description
        switch error {
        case .unknownUser: return APIError(.notFound, "unknown_user", message)
        case .coldUser: return APIError(.notFound, "cold_user", message)
        case .unknownItem: return APIError(.notFound, "unknown_item", message)
        case .noItemVector: return APIError(.notFound, "no_item_vector", message)
        case .noModel: return APIError(.conflict, "no_model", message)
        case .noRankingModel: return APIError(.conflict, "no_ranking_model", message)
        case .noRatings: return APIError(.conflict, "no_ratings", message)
        case .unknownGenre: return APIError(.notFound, "unknown_genre", message)
        case .reloadFailed: return APIError(.internalServerError, "reload_failed", message)
        case .input(_, _, let reason):
            // Well-formed JSON whose values the database cannot take (a rating outside its scale).
            return APIError(.unprocessableContent, "invalid_rating", reason)
        default: return APIError(.internalServerError, "internal", message)
        }
    }
}
