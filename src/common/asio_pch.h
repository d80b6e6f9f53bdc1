// Precompiled header for the translation units that use Asio: it is most of their compile time.
#pragma once
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <simdjson.h>
#include <spdlog/spdlog.h>
