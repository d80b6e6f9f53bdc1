// Internal to src/http: how the Server hands accepted sockets to Connections (connection.cc).
#pragma once

#include "http/server.h"

namespace sluice::http {

/// Serves an accepted socket on its executor until the connection ends; the Connection
/// registers itself in server.connections_ and deletes itself when done.
void spawn_connection(Server& server, tcp::socket socket);

/// Server::begin_drain: an idle connection closes now, a busy one after its response.
void drain_connection(Connection& c);

}  // namespace sluice::http
