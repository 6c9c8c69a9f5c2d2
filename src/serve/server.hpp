// The service's public API is earmark/serve.hpp; this adds its metrics for the service's own
// sources and tests.
#pragma once

#include "earmark/serve.hpp"
#include "serve/metrics.hpp"
