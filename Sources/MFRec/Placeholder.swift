import MFStore
