/* remaplab.h: the contract for user programs; see README */
#ifndef REMAPLAB_H
#define REMAPLAB_H
#endif
