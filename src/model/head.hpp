// model: the custom-class head (struct Head) is public, in earmark/train.hpp, with its file
// layout; head.cpp loads, saves and applies it, head_fit.cpp trains it (LibTorch).
#pragma once

#include "earmark/train.hpp"
